"""Delivery channels: each takes the alert engine's outbox items and confirms them.

Kept free of heavy imports, so the collector can read the current alert picture
(alerts/channels/current.py) without loading the engine.
"""
