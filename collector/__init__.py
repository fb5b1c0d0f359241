"""Collector: MQTT -> decode -> validate -> QC -> store, republishing clean readings."""
