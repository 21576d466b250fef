"""Users, passwords, login sessions and team roles."""
