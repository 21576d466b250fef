"""Calls: routing a number to its agent, applying provider events, the call document."""
