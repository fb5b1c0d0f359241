"""Telegram bot (see the Telegram bot issue)."""
