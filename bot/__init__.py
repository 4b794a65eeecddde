"""Telegram: application wiring, command handlers, auth, alert delivery, formatting."""
