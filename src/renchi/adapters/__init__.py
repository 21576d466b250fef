"""Clients of the outside world: Twilio, ElevenLabs, storage and, later, the OAuth providers."""
