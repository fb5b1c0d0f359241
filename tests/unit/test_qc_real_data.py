"""Quality control on real recordings: the known sensor fault is caught, real floods are not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.qc import QualityControl
from floodwatch.catalog import load_catalog
from floodwatch.models import QCFlag
from floodwatch.recordings import convert_file
from floodwatch.settings import CATALOG_DIR
from tests.harness.shared_data import require_data_dir

pytestmark = pytest.mark.realdata
RHINE = "rhine_capRhein"
SPIKE_OR_JUMP = QCFlag.SPIKE | QCFlag.JUMP


def verdicts(
    file: str, start: datetime, end: datetime, folder: str = RHINE, catalog: str = "rhine.yaml"
) -> dict[datetime, tuple[float, QCFlag]]:
    """The final QC verdict on every reading of the recording in [start, end), with the
    revisions later readings made applied (as the store ends up holding them)."""
    path: Path = require_data_dir() / folder / file
    qc = QualityControl(load_catalog(CATALOG_DIR / catalog))
    found: dict[datetime, tuple[float, QCFlag]] = {}
    for row in convert_file(path, start=start, end=end):
        checked = qc.check(row.to_reading())
        for reading in (*checked.revised, checked.reading):
            found[reading.ts] = (reading.level, reading.qc)
    return found


def flagged(
    file: str, start: datetime, end: datetime, folder: str = RHINE, catalog: str = "rhine.yaml"
) -> list[tuple[datetime, float, QCFlag]]:
    """Every reading of the recording in [start, end) that QC finally flags as spike or
    jump, or leaves suspect."""
    return [
        (ts, level, qc)
        for ts, (level, qc) in sorted(verdicts(file, start, end, folder, catalog).items())
        if qc & (SPIKE_OR_JUMP | QCFlag.SUSPECT)
    ]


def test_mannheim_neckar_1518_cm_sensor_spike_is_the_only_fault_flagged() -> None:
    found = flagged(
        "23800900_Neckar_MannheimNeckar_15min.csv.gz",
        datetime(2018, 1, 1, tzinfo=UTC),
        datetime(2018, 3, 31, tzinfo=UTC),
    )
    assert [(ts.date().isoformat(), level) for ts, level, _ in found] == [("2018-02-25", 1518.0)]
    assert found[0][2] == QCFlag.SPIKE | QCFlag.JUMP


@pytest.mark.parametrize(
    ("file", "start"),
    [
        ("25100100_Rhein_Mainz_15min.csv.gz", datetime(2018, 1, 1, tzinfo=UTC)),
        ("2750010_Rhein_Duesseldorf_15min.csv.gz", datetime(2018, 1, 1, tzinfo=UTC)),
        ("2770040_Rhein_Wesel_15min.csv.gz", datetime(2018, 1, 1, tzinfo=UTC)),
        ("2710080_Rhein_Bonn_15min.csv.gz", datetime(2016, 5, 25, tzinfo=UTC)),
        # Neckar flash floods of 2016 and 2018, rising up to 272 cm/h.
        ("23800500_Neckar_Lauffen_15min.csv.gz", datetime(2016, 5, 20, tzinfo=UTC)),
        ("23800500_Neckar_Lauffen_15min.csv.gz", datetime(2018, 5, 20, tzinfo=UTC)),
    ],
)
def test_real_flood_rises_stay_clean(file: str, start: datetime) -> None:
    assert flagged(file, start, start + timedelta(days=40)) == []


@pytest.mark.parametrize(
    "file",
    [
        "23800500_Neckar_Lauffen_15min.csv.gz",
        "23800760_Neckar_Heidelberg_UP_15min.csv.gz",
        "23800900_Neckar_MannheimNeckar_15min.csv.gz",
        "24500100_Main_Steinbach_15min.csv.gz",
        "2310010_Rhein_Basel-Rheinhalle_15min.csv.gz",
    ],
)
def test_nearly_three_years_leave_no_reading_undecided_and_no_fault_but_the_spike(
    file: str,
) -> None:
    """2016-01 .. 2018-10, every reading: nothing left suspect, and the only faults are
    Mannheim's spike (and a real flatline or two)."""
    found = flagged(file, datetime(2016, 1, 1, tzinfo=UTC), datetime(2018, 10, 22, tzinfo=UTC))
    expected = [("2018-02-25", 1518.0)] if "Mannheim" in file else []
    assert [(ts.date().isoformat(), level) for ts, level, _ in found] == expected


@pytest.mark.parametrize(
    "file",
    [
        "06022_Blagoveshchensk_Amur_daily_1984-2017.csv.gz",
        "05012_Khabarovsk_Amur_daily_1984-2017.csv.gz",
        "05024_Komsomolsk-na-Amure_Amur_daily_1984-2017.csv.gz",
    ],
)
def test_amur_2013_record_flood_stays_clean(file: str) -> None:
    start = datetime(2013, 6, 1, tzinfo=UTC)
    found = flagged(file, start, start + timedelta(days=150), "roshydromet_amur_daily", "amur.yaml")
    assert found == []


def test_lauffen_500_cm_per_hour_step_that_holds_is_confirmed_as_a_new_level() -> None:
    """186 → 311 cm in 15 minutes (2016-12-20) and 315 cm after it: a step that holds is
    confirmed by the next reading. Discharge hardly changed (32.3 → 32.7 m³/s), so this was
    probably the weir or the sensor, not a flood; without discharge no gauge QC can tell,
    and a level that stays must not be flagged for ever (the old rule re-based after three
    readings). It is stored CONFIRMED, so the history still shows it was held."""
    found = verdicts(
        "23800500_Neckar_Lauffen_15min.csv.gz",
        datetime(2016, 12, 19, tzinfo=UTC),
        datetime(2016, 12, 22, tzinfo=UTC),
    )
    assert found[datetime(2016, 12, 20, 13, tzinfo=UTC)] == (311.0, QCFlag.CONFIRMED)
    assert [ts for ts, (_, qc) in found.items() if qc] == [datetime(2016, 12, 20, 13, tzinfo=UTC)]


@pytest.mark.parametrize(
    "file",
    [
        "Todmorden-Callis-Bridge-level-15min-Qualified.csv.gz",
        "Hebden-Bridge-level-15min-Qualified.csv.gz",
        "Nutclough-level-15min-Qualified.csv.gz",
        "Mytholmroyd-level-15min-Qualified.csv.gz",
        "Mytholmroyd-Dauber-Bridge-level-15min-Qualified.csv.gz",
    ],
)
def test_calder_small_rivers_stay_clean(file: str) -> None:
    """Fast small rivers in metres (EA Hydrology, 2025-08/09, with a small rise on 09-12):
    nothing flagged, nothing left undecided."""
    judged = verdicts(
        file,
        datetime(2025, 8, 1, tzinfo=UTC),
        datetime(2025, 10, 1, tzinfo=UTC),
        "ea_calder/raw",
        "calder.yaml",
    )
    assert len(judged) > 2000  # four weeks of 15-minute readings
    assert [(ts, level, qc) for ts, (level, qc) in judged.items() if qc] == []
