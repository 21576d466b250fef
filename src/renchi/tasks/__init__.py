"""Durable background tasks: the queue in the database and the worker that runs it."""
