"""Webhook intake shared by every source: deduplication, one transaction, the spool."""
