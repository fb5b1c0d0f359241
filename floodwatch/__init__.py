"""Floodwatch shared kernel: settings, station catalog, domain models, storage, topics, CLI."""

__version__ = "0.1.0"
