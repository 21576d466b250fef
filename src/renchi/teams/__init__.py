"""Teams, their agents and phone numbers."""
