"""What a backtest can reuse from the previous run in the same --out folder.

Learning and forecasting do not depend on the thresholds: a model depends on the
station's forecast settings, its upstream gauges and the readings before `learn_until`;
a forecast path on the model and the readings before its issue time. Both are kept in
`OUT/cache/` under a hash of exactly those inputs, so a second run with other `--set`
values only recomputes the threshold outlooks (forecasting/forecast.py `outlooks`) and
replays the state machine. Delete the folder to start afresh; a damaged or outdated file
is simply recomputed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from floodwatch.catalog import Station
from forecasting.forecast import HorizonForecast, StationForecast
from forecasting.real_floods import learn_for
from forecasting.routing import LearnedModel
from forecasting.series import Series
from forecasting.trend import InsufficientData, Trend

VERSION = "backtest-cache-1"
TREND_FIELDS = tuple(f.name for f in fields(Trend))


def _digest(*parts: object) -> str:
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        if isinstance(part, Series):
            h.update(part.t.tobytes())
            h.update(part.level.tobytes())
        elif isinstance(part, np.ndarray):
            h.update(np.ascontiguousarray(part).tobytes())
        else:
            h.update(orjson.dumps(part, option=orjson.OPT_SORT_KEYS))
        h.update(b"|")
    return h.hexdigest()


def _floats(value: Any) -> Any:
    """Numbers as floats: a catalog read from YAML keeps `horizons_h: [1, 2]` as ints, the
    same station validated again after --set has 1.0, 2.0; both must give one key."""
    if isinstance(value, dict):
        return {k: _floats(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_floats(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def settings_key(station: Station) -> Any:
    """What learning and forecasting read from the catalog (never the ladder)."""
    return _floats({"upstream": station.upstream, "forecast": station.forecast.model_dump()})


def _float(value: Any) -> float:
    return float("nan") if value is None else float(value)


def encode(forecast: StationForecast) -> list[Any]:
    trend = forecast.trend
    return [
        forecast.issued_at,
        forecast.method,
        forecast.insufficient,
        None if trend is None else [getattr(trend, name) for name in TREND_FIELDS],
        [[p.horizon_s, p.valid_at, p.level, p.lower, p.upper] for p in forecast.horizons],
    ]


def decode(station_id: str, data: list[Any]) -> StationForecast:
    issued, method, insufficient, trend, path = data
    parsed = None
    if trend is not None:
        values = dict(zip(TREND_FIELDS, trend, strict=True))
        for name in ("level", "at", "rate_per_h", "rate_se_per_h", "noise"):
            values[name] = _float(values[name])
        parsed = Trend(**values)
    points = tuple(HorizonForecast(*(_float(v) for v in point)) for point in path)
    return StationForecast(station_id, float(issued), parsed, method, points, (), insufficient)


def _write(path: Path, data: Any) -> None:
    tmp = path.with_name(f".partial-{path.name}")
    tmp.write_bytes(orjson.dumps(data))
    os.replace(tmp, path)


def _read(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None


class Cache:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.hits = 0
        self.misses = 0
        loaded = _read(folder / "models.json")
        self._models: dict[str, Any] = loaded if isinstance(loaded, dict) else {}
        self._changed = False

    def model(
        self, station: Station, clean: Mapping[str, Series], learn_until: float
    ) -> tuple[LearnedModel | InsufficientData, str]:
        """learn_for on the clean readings before `learn_until` (or its cached result), and
        the key of its inputs."""
        inputs = [x for sid, s in sorted(clean.items()) for x in (sid, s.until(learn_until))]
        key = _digest(VERSION, station.id, settings_key(station), learn_until, *inputs)
        entry = self._models.get(key)
        if isinstance(entry, dict):
            try:
                if "reason" in entry:
                    return InsufficientData(str(entry["reason"])), key
                return LearnedModel.from_dict(entry), key
            except (KeyError, TypeError, ValueError):
                pass
        learned = learn_for(station, clean, learn_until)
        self._models[key] = (
            learned.to_dict() if isinstance(learned, LearnedModel) else {"reason": learned.reason}
        )
        self._changed = True
        return learned, key

    def forecasts(
        self,
        station: Station,
        clean: Mapping[str, Series],
        model_key: str,
        issued: np.ndarray[Any, Any],
        compute: Callable[[], list[StationForecast]],
    ) -> list[StationForecast]:
        """Threshold-free forecasts at the issue times: from the cache if the inputs match."""
        inputs = [x for sid, series in sorted(clean.items()) for x in (sid, series)]
        key = _digest(VERSION, station.id, settings_key(station), model_key, issued, *inputs)
        path = self.folder / f"forecasts-{station.id}.json"
        stored = _read(path)
        if isinstance(stored, dict) and stored.get("key") == key:
            try:
                found = [decode(station.id, item) for item in stored["forecasts"]]
                self.hits += 1
                return found
            except (KeyError, TypeError, ValueError):
                pass
        self.misses += 1
        computed = compute()
        self.folder.mkdir(parents=True, exist_ok=True)
        _write(path, {"key": key, "forecasts": [encode(fc) for fc in computed]})
        return computed

    def save(self) -> None:
        if self._changed:
            self.folder.mkdir(parents=True, exist_ok=True)
            _write(self.folder / "models.json", self._models)
            self._changed = False
