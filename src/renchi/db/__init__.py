"""Database layer: models, the async engine and sessions, Alembic migrations."""
