"""Alert engine (see the alert engine issue)."""
