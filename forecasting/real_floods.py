"""The recorded floods the forecaster is judged on (../shared/data), and one function that
replays a period through the forecaster as if live: models learn only from data before
the period, and each forecast sees only readings up to its issue time."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from floodwatch.catalog import Catalog, Station, Threshold, load_catalog
from floodwatch.recordings import RecordingError, convert_file
from floodwatch.replay_csv import ReplayRow
from floodwatch.settings import CATALOG_DIR
from forecasting.evaluation import Hindcast, hindcast, series_by_station
from forecasting.learning import learn_station
from forecasting.routing import LearnedModel
from forecasting.series import Series
from forecasting.trend import HOUR, InsufficientData
from forecasting.verification import (
    HorizonSkill,
    ThresholdVerdict,
    horizon_skill,
    threshold_verdicts,
)

DAY = 86400.0
DEFAULT_LEARN_DAYS = 365.0


@dataclass(frozen=True, slots=True)
class Period:
    name: str
    dataset: str  # folder under the shared data directory
    catalog: str  # file under floodwatch/catalogs
    train_until: str  # ISO 8601 with offset: models see nothing from here on
    start: str
    end: str
    stations: tuple[str, ...]  # the gauges to score
    control: bool = False  # no crossing may be forecast here
    issue_step_h: float = 1.0

    def bounds(self) -> tuple[float, float, float]:
        return tuple(  # type: ignore[return-value]
            datetime.fromisoformat(text).timestamp()
            for text in (self.train_until, self.start, self.end)
        )


RHINE_CHAIN = (
    "rhein-philippsburg",
    "rhein-mainz",
    "rhein-koblenz-rhein",
    "rhein-bonn",
    "rhein-duesseldorf",
    "rhein-wesel",
)
CALDER = (
    "calder-todmorden-callis-bridge",
    "calder-hebden-bridge",
    "calder-nutclough",
    "calder-mytholmroyd",
    "calder-mytholmroyd-dauber-bridge",
)
PERIODS = (
    Period(
        "Rhine, January 2018 flood",
        "rhine_capRhein",
        "rhine.yaml",
        "2017-12-01T00:00+00:00",
        "2017-12-20T00:00+00:00",
        "2018-02-10T00:00+00:00",
        RHINE_CHAIN,
    ),
    Period(
        "Rhine, June 2016 flood",
        "rhine_capRhein",
        "rhine.yaml",
        "2016-05-20T00:00+00:00",
        "2016-05-25T00:00+00:00",
        "2016-06-20T00:00+00:00",
        RHINE_CHAIN,
    ),
    Period(
        "Rhine, 2018 low water (control)",
        "rhine_capRhein",
        "rhine.yaml",
        "2018-06-01T00:00+00:00",
        "2018-06-15T00:00+00:00",
        "2018-10-21T00:00+00:00",
        RHINE_CHAIN,
        control=True,
    ),
    Period(
        "Amur, 2013 flood (daily)",
        "roshydromet_amur_daily",
        "amur.yaml",
        "2013-01-01T00:00+00:00",
        "2013-06-01T00:00+00:00",
        "2013-10-31T00:00+00:00",
        ("amur-khabarovsk", "amur-elabuga", "amur-troitskoye", "amur-komsomolsk-na-amure"),
        issue_step_h=24.0,
    ),
    Period(
        "Calder, Aug–Sep 2025 (control, small rise on 09-12)",
        "ea_calder",
        "calder.yaml",
        "2025-08-30T00:00+00:00",
        "2025-08-30T00:00+00:00",
        "2025-09-13T12:00+00:00",
        CALDER,
        control=True,
    ),
)


@dataclass(frozen=True)
class StationResult:
    station: Station
    model: LearnedModel | InsufficientData
    hindcast: Hindcast
    skill: list[HorizonSkill]
    verdicts: list[ThresholdVerdict]
    control_ladder: bool = False  # the ladder was made up for the control (see below)


@dataclass(frozen=True)
class PeriodResult:
    period: Period
    stations: list[StationResult] = field(default_factory=list)

    @property
    def false_alarms(self) -> int:
        return sum(len(v.verdicts.false_alarms) for s in self.stations for v in s.verdicts)


@functools.cache
def load_dataset(data_dir: Path, dataset: str) -> Mapping[str, Series]:
    """Every recording of one dataset folder, one Series per station (cached)."""
    rows: list[ReplayRow] = []
    for path in sorted((data_dir / dataset).rglob("*.csv.gz")):
        try:
            rows.extend(convert_file(path))
        except RecordingError:
            continue  # a table that is not one gauge's recording (e.g. Amur daily maxima)
    return series_by_station(rows)


def control_ladder(station: Station, observed: Series) -> tuple[Threshold, ...]:
    """A rung for a control gauge that has no official one: twice as far above the median
    as the highest level in the period, so the water came halfway there and a forecaster
    that over-reacts to a small rise calls a crossing that never happens."""
    median = float(np.median(observed.level))
    peak = float(observed.level.max())
    return (
        Threshold(
            key="control",
            value=round(median + 2 * (peak - median), 3),
            severity="warning",
            short="C",
            names={"en": "control level (made up for the evaluation)"},
        ),
    )


def learn_for(
    station: Station, series: Mapping[str, Series], train_until: float
) -> LearnedModel | InsufficientData:
    observed = series.get(station.id)
    if observed is None:
        return InsufficientData("no recording")
    since = train_until - (station.forecast.learn_days or DEFAULT_LEARN_DAYS) * DAY
    until = train_until - 1e-3
    upstream = {u: series[u].window(since, until) for u in station.upstream if u in series}
    return learn_station(station, observed.window(since, until), upstream)


def evaluate_period(period: Period, data_dir: Path) -> PeriodResult:
    catalog: Catalog = load_catalog(CATALOG_DIR / period.catalog)
    series = load_dataset(data_dir, period.dataset)
    train_until, start, end = period.bounds()
    issues = np.arange(start, end, period.issue_step_h * HOUR)
    result = PeriodResult(period)
    for station_id in period.stations:
        station = catalog[station_id]
        observed = series[station_id]
        learned = learn_for(station, series, train_until)
        model = learned if isinstance(learned, LearnedModel) else None
        made_up = period.control and not station.levels
        if made_up:
            station = station.model_copy(
                update={"levels": control_ladder(station, observed.window(start, end))}
            )
        upstream = {u: series[u] for u in station.upstream if u in series}
        cast = hindcast(station, observed, upstream, model, issues)
        result.stations.append(
            StationResult(
                station,
                learned,
                cast,
                horizon_skill(cast),
                threshold_verdicts(station, cast, observed),
                made_up,
            )
        )
    return result
