"""One gauge's alert state, as the engine stores it (JSON in the state SQLite file)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Prewarning:
    key: str  # the rung the forecast expects
    expected_at: datetime
    issued_at: datetime


_TIMES = ("since", "below_since", "last_at", "trend_at")


@dataclass(frozen=True, slots=True)
class GaugeState:
    active: str | None = None  # key of the rung held; None below the ladder
    since: datetime | None = None  # when the current rung was entered or left
    below_since: datetime | None = None  # below the held rung's clear level since
    prewarning: Prewarning | None = None
    rapid: bool = False  # a rapid-rise alert is out and not re-armed yet
    last_level: float | None = None  # the newest clean level
    last_at: datetime | None = None  # the newest reading, clean or not
    offline: bool = False
    faulty: bool = False
    clean_run: int = 0  # clean readings in a row while faulty
    # The highest rung a suspect reading reached and dispatchers were told of, until the
    # next trusted reading (the suspect's confirmation, or any clean reading).
    unconfirmed: str | None = None
    maintenance: bool = False
    # The newest forecast's trend, so alerts decided on a reading can say how the water
    # moves ("rising 12 cm/h") instead of "trend not known".
    trend_rate_per_h: float | None = None
    trend_direction: str | None = None
    trend_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in _TIMES:
            value = getattr(self, name)
            data[name] = value.isoformat() if value else None
        if self.prewarning is not None:
            data["prewarning"] = {
                "key": self.prewarning.key,
                "expected_at": self.prewarning.expected_at.isoformat(),
                "issued_at": self.prewarning.issued_at.isoformat(),
            }
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GaugeState:
        values = dict(data)
        for name in _TIMES:
            if values.get(name):
                values[name] = datetime.fromisoformat(values[name])
        if values.get("prewarning"):
            raw = values["prewarning"]
            values["prewarning"] = Prewarning(
                raw["key"],
                datetime.fromisoformat(raw["expected_at"]),
                datetime.fromisoformat(raw["issued_at"]),
            )
        return cls(**values)
