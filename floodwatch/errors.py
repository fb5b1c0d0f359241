"""Domain errors: each I/O shell turns its library's errors into one of these."""


class FloodwatchError(Exception):
    """Base of every error Floodwatch raises on purpose."""


class ConfigError(FloodwatchError):
    """Settings or the station catalog are invalid; the message names the field."""


class StoreUnavailable(FloodwatchError):
    """The readings store cannot be reached now; retrying later may succeed."""


class StoreRejected(FloodwatchError):
    """The store refused the data itself; retrying the same data cannot succeed."""


class SpoolUnavailable(FloodwatchError):
    """The collector's local spool cannot be read or written (disk full, file damaged)."""


class BrokerUnavailable(FloodwatchError):
    """The MQTT broker cannot be reached or refused the connection."""
