"""Webhook delivery: the dispatcher that every server process runs over the outbox, and the
HTTP client it posts with."""
