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


def flagged(
    file: str, start: datetime, end: datetime, folder: str = RHINE, catalog: str = "rhine.yaml"
) -> list[tuple[datetime, float, QCFlag]]:
    """Every reading of the recording in [start, end) that QC flags as spike or jump."""
    path: Path = require_data_dir() / folder / file
    qc = QualityControl(load_catalog(CATALOG_DIR / catalog))
    found = []
    for row in convert_file(path, start=start, end=end):
        reading = qc.check(row.to_reading())
        if reading.qc & SPIKE_OR_JUMP:
            found.append((reading.ts, reading.level, reading.qc))
    return found


def test_mannheim_neckar_1518_cm_sensor_spike_is_the_only_fault_flagged() -> None:
    found = flagged(
        "23800900_Neckar_MannheimNeckar_15min.csv.gz",
        datetime(2018, 1, 1, tzinfo=UTC),
        datetime(2018, 3, 31, tzinfo=UTC),
    )
    assert [(ts.date().isoformat(), level) for ts, level, _ in found] == [("2018-02-25", 1518.0)]
    assert found[0][2] & QCFlag.SPIKE
    assert found[0][2] & QCFlag.JUMP


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
        "06022_Blagoveshchensk_Amur_daily_1984-2017.csv.gz",
        "05012_Khabarovsk_Amur_daily_1984-2017.csv.gz",
        "05024_Komsomolsk-na-Amure_Amur_daily_1984-2017.csv.gz",
    ],
)
def test_amur_2013_record_flood_stays_clean(file: str) -> None:
    start = datetime(2013, 6, 1, tzinfo=UTC)
    found = flagged(file, start, start + timedelta(days=150), "roshydromet_amur_daily", "amur.yaml")
    assert found == []


def test_lauffen_500_cm_per_hour_step_is_a_jump() -> None:
    found = flagged(
        "23800500_Neckar_Lauffen_15min.csv.gz",
        datetime(2016, 12, 19, tzinfo=UTC),
        datetime(2016, 12, 22, tzinfo=UTC),
    )
    assert [(ts.isoformat(), level) for ts, level, _ in found][:1] == [
        ("2016-12-20T13:00:00+00:00", 311.0)
    ]
    assert found[0][2] & QCFlag.JUMP
