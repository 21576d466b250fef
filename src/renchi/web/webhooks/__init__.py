"""Webhook endpoints of Twilio and ElevenLabs."""
