"""Converters from the shared recordings to Replay CSV rows.

Inline samples test the parsing cores; the `realdata` tests read ../shared/data (or
$FLOODWATCH_SHARED_DATA) and skip, saying so, where it is absent.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from floodwatch.catalog import Catalog, load_catalog
from floodwatch.recordings import (
    AMUR_DEFAULT_OFFSET,
    RecordingError,
    RecordingFormat,
    convert_file,
    convert_files,
    convert_lines,
    detect_format,
    is_time_ordered,
    slugify,
    station_id_for_file,
)
from floodwatch.replay_csv import ReplayRow, read_replay
from floodwatch.settings import CATALOG_DIR
from tests.harness.shared_data import require_data_dir

CAPRHEIN = """\
timestamp_CET,W_cm,Q_m3s
2018-01-08 23:00:00,837,7720
2018-01-08 23:15:00,838,7740
2018-07-01 12:00:00,250,
"""
CAPRHEIN_NO_Q = "timestamp_CET,W_cm\n2016-01-01 00:15:00,219\n"
AMUR = """\
date,level_mean_cm,level_min_cm,level_max_cm,water_temp_C,KSVO_code
2013-09-03,805,802,808,18.1,"29,30"
2013-09-04,807,805,808,17.9,29
1985-11-01,,,,,
2004-12-01,-275,-275,-275,,"15, 3"
"""
EA = """\
"measure","dateTime","date","value","completeness","quality","qcode"
"http://environment.data.gov.uk/x-level-i-900-m-qualified","2025-09-12T09:15:00","2025-09-12","0.289","","Unchecked",""
"http://environment.data.gov.uk/x-level-i-900-m-qualified","2025-09-12T09:30:00","2025-09-12","","","Missing",""
"http://environment.data.gov.uk/x-level-i-900-m-qualified","2025-09-12T09:45:00","2025-09-12","-0.062","","Good",""
"""


def _convert(
    text: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    amur_offset: timedelta = AMUR_DEFAULT_OFFSET,
) -> list[ReplayRow]:
    lines = text.splitlines(keepends=True)
    return list(
        convert_lines(lines, "x", source="s.csv", start=start, end=end, amur_offset=amur_offset)
    )


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- the station id rule ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file_name", "station_id"),
    [
        ("2750010_Rhein_Duesseldorf_15min.csv.gz", "rhein-duesseldorf"),
        ("23800900_Neckar_MannheimNeckar_15min.csv.gz", "neckar-mannheimneckar"),
        ("25900700_Rhein_Koblenz_Rhein_15min.csv.gz", "rhein-koblenz-rhein"),
        ("23800760_Neckar_Heidelberg_UP_15min.csv.gz", "neckar-heidelberg-up"),
        ("2310010_Rhein_Basel-Rheinhalle_15min.csv", "rhein-basel-rheinhalle"),
        ("05012_Khabarovsk_Amur_daily_1984-2017.csv.gz", "amur-khabarovsk"),
        ("05024_Komsomolsk-na-Amure_Amur_daily_1984-2017.csv.gz", "amur-komsomolsk-na-amure"),
        ("06016_Kumara_Amur_daily_1984-2017-03.csv.gz", "amur-kumara"),
        ("Hebden-Bridge-level-15min-Qualified.csv.gz", "calder-hebden-bridge"),
        (
            "Mytholmroyd-Dauber-Bridge-level-15min-Qualified.csv.gz",
            "calder-mytholmroyd-dauber-bridge",
        ),
    ],
)
def test_station_id_from_file_name(file_name: str, station_id: str) -> None:
    assert station_id_for_file(Path("/any/dir") / file_name) == station_id


@pytest.mark.parametrize(
    "file_name", ["amur_target_posts_daily_max_1984-2020.csv.gz", "thresholds_rhine_marks.csv"]
)
def test_file_names_outside_the_rule_are_refused(file_name: str) -> None:
    with pytest.raises(RecordingError, match="pass a station id"):
        station_id_for_file(file_name)


@pytest.mark.parametrize(
    ("text", "slug"),
    [("Düsseldorf", "duesseldorf"), ("Koblenz_Rhein", "koblenz-rhein"), (" A -- B ", "a-b")],
)
def test_slugify(text: str, slug: str) -> None:
    assert slugify(text) == slug


# --- format detection and the three converters ----------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (CAPRHEIN, RecordingFormat.CAPRHEIN),
        (CAPRHEIN_NO_Q, RecordingFormat.CAPRHEIN),
        (AMUR, RecordingFormat.AMUR_DAILY),
        (EA, RecordingFormat.EA_HYDROLOGY),
        ("station_id,timestamp,level\n", None),
        ("date,level_max_cm,post_code\n", None),
    ],
)
def test_detect_format_from_header(text: str, expected: RecordingFormat | None) -> None:
    header = next(csv.reader(text.splitlines()))
    assert detect_format(header) is expected


def test_caprhein_is_fixed_utc_plus_one_all_year() -> None:
    rows = _convert(CAPRHEIN)
    assert [(row.ts, row.level) for row in rows] == [
        (_utc(2018, 1, 8, 22, 0), 837.0),
        (_utc(2018, 1, 8, 22, 15), 838.0),
        (_utc(2018, 7, 1, 11, 0), 250.0),  # July: still UTC+1, no summer time
    ]
    assert all(row.station_id == "x" for row in rows)


def test_caprhein_without_discharge_column() -> None:
    assert [row.ts for row in _convert(CAPRHEIN_NO_Q)] == [_utc(2015, 12, 31, 23, 15)]


def test_amur_daily_mean_at_0800_local_standard_time() -> None:
    rows = _convert(AMUR)
    # 08:00 at +10:00 is 22:00 UTC on the day before; the empty 1985 row is skipped.
    assert [(row.ts, row.level) for row in rows] == [
        (_utc(2013, 9, 2, 22), 805.0),
        (_utc(2013, 9, 3, 22), 807.0),
        (_utc(2004, 11, 30, 22), -275.0),
    ]


def test_amur_offset_option() -> None:
    rows = _convert(AMUR, amur_offset=timedelta(hours=9))  # Blagoveshchensk keeps UTC+9
    assert rows[0].ts == _utc(2013, 9, 2, 23)


def test_ea_is_utc_metres_and_skips_empty_values() -> None:
    rows = _convert(EA)
    assert [(row.ts, row.level) for row in rows] == [
        (_utc(2025, 9, 12, 9, 15), 0.289),
        (_utc(2025, 9, 12, 9, 45), -0.062),
    ]


def test_time_window_is_start_inclusive_end_exclusive() -> None:
    rows = _convert(CAPRHEIN, start=_utc(2018, 1, 8, 22, 0), end=_utc(2018, 1, 8, 22, 15))
    assert [row.level for row in rows] == [837.0]


def test_time_window_accepts_any_offset() -> None:
    start = datetime(2018, 1, 8, 23, 15, tzinfo=timezone(timedelta(hours=1)))
    assert [row.level for row in _convert(CAPRHEIN, start=start)] == [838.0, 250.0]


def test_naive_window_is_refused() -> None:
    naive = datetime(2018, 1, 1)  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="start must be timezone-aware"):
        _convert(CAPRHEIN, start=naive)
    with pytest.raises(ValueError, match="end must be timezone-aware"):
        _convert(CAPRHEIN, end=naive)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("timestamp_CET,W_cm\n2018-01-01 00:00:00,ten\n", "s.csv:2: W_cm 'ten' is not a number"),
        ("timestamp_CET,W_cm\n2018-01-01 00:00:00,nan\n", "s.csv:2: W_cm 'nan' is not finite"),
        ("timestamp_CET,W_cm\n2018-13-01 00:00:00,1\n", "s.csv:2: timestamp_CET"),
        ("timestamp_CET,W_cm\n2018-01-01 00:00:00,1\n2018-01-01\n", "s.csv:3: expected at least"),
        (AMUR.replace("2013-09-04", "04.09.2013"), "s.csv:3: date '04.09.2013'"),
        ("station_id,timestamp,level\n", "s.csv:1: unknown recording header"),
        ("", "s.csv: empty file"),
    ],
)
def test_bad_input_names_source_and_line(text: str, reason: str) -> None:
    with pytest.raises(RecordingError) as caught:
        _convert(text)
    assert reason in str(caught.value)


def test_bad_station_id_override_is_refused() -> None:
    with pytest.raises(RecordingError, match="station id 'Mainz'"):
        list(convert_lines(CAPRHEIN.splitlines(), "Mainz"))


# --- files and the merged replay ---------------------------------------------------------------


def _write_gz(path: Path, text: str) -> Path:
    with gzip.open(path, "wt", encoding="utf-8", newline="") as handle:
        handle.write(text)
    return path


def test_convert_file_reads_gzip_and_derives_the_id(tmp_path: Path) -> None:
    path = _write_gz(tmp_path / "2750010_Rhein_Duesseldorf_15min.csv.gz", CAPRHEIN)
    rows = list(convert_file(path))
    assert {row.station_id for row in rows} == {"rhein-duesseldorf"}
    assert len(rows) == 3


def test_convert_file_missing_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "2750010_Rhein_Duesseldorf_15min.csv.gz"
    with pytest.raises(RecordingError, match="cannot read recording"):
        list(convert_file(path))


def test_convert_files_merges_by_time(tmp_path: Path) -> None:
    rhine = _write_gz(tmp_path / "2750010_Rhein_Duesseldorf_15min.csv.gz", CAPRHEIN)
    calder = tmp_path / "Hebden-Bridge-level-15min-Qualified.csv"
    calder.write_text(EA, encoding="utf-8")
    amur = _write_gz(tmp_path / "05012_Khabarovsk_Amur_daily_1984-2017.csv.gz", AMUR)
    out = tmp_path / "out" / "merged.csv"
    out.parent.mkdir()

    count = convert_files([rhine, calder, amur], out, None, None, None)

    rows = list(read_replay(out))
    assert count == len(rows) == 3 + 2 + 3
    assert is_time_ordered(rows)
    assert rows[0] == ReplayRow("amur-khabarovsk", _utc(2004, 11, 30, 22), -275.0)
    assert rows[-1].station_id == "calder-hebden-bridge"


def test_convert_files_sorts_a_file_that_is_out_of_order(tmp_path: Path) -> None:
    shuffled = AMUR.splitlines(keepends=True)
    path = tmp_path / "05012_Khabarovsk_Amur_daily_1984-2017.csv"
    path.write_text("".join([shuffled[0], *reversed(shuffled[1:])]), encoding="utf-8")
    out = tmp_path / "out.csv.gz"
    assert convert_files([path], out, None, None, None) == 3
    rows = list(read_replay(out))
    assert is_time_ordered(rows)
    assert [row.level for row in rows] == [-275.0, 805.0, 807.0]


def test_convert_files_window_and_override(tmp_path: Path) -> None:
    path = _write_gz(tmp_path / "sample.csv.gz", CAPRHEIN)
    out = tmp_path / "out.csv"
    count = convert_files([path], out, _utc(2018, 1, 1), _utc(2018, 2, 1), "my-gauge")
    assert count == 2
    assert {row.station_id for row in read_replay(out)} == {"my-gauge"}


def test_convert_files_refuses_one_override_for_many_files(tmp_path: Path) -> None:
    a = _write_gz(tmp_path / "a.csv.gz", CAPRHEIN)
    with pytest.raises(RecordingError, match="exactly one recording file"):
        convert_files([a, a], tmp_path / "out.csv", None, None, "my-gauge")


def test_convert_files_leaves_no_output_when_an_input_is_bad(tmp_path: Path) -> None:
    good = _write_gz(tmp_path / "2750010_Rhein_Duesseldorf_15min.csv.gz", CAPRHEIN)
    bad = tmp_path / "2770040_Rhein_Wesel_15min.csv"
    bad.write_text("timestamp_CET,W_cm\n2018-01-01 00:00:00,-\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    with pytest.raises(RecordingError, match=r"2770040_Rhein_Wesel_15min\.csv:2"):
        convert_files([good, bad], out, None, None, None)
    assert not out.exists()


# --- real recordings ------------------------------------------------------------------------------

realdata = pytest.mark.realdata


@pytest.fixture
def data_dir() -> Path:
    return require_data_dir()


# (shipped catalog, data folder, glob of its recordings)
DATASETS = [
    ("rhine", "rhine_capRhein", "*_15min.csv.gz"),
    ("amur", "roshydromet_amur_daily", "*_Amur_daily_*.csv.gz"),
    ("calder", "ea_calder/raw", "*-level-15min-*.csv.gz"),
]


def _catalog(name: str) -> Catalog:
    return load_catalog(CATALOG_DIR / f"{name}.yaml")


def _recording(data_dir: Path, folder: str, station_id: str) -> Path:
    _, _, pattern = next(d for d in DATASETS if d[1] == folder)
    matches = [p for p in (data_dir / folder).glob(pattern) if station_id_for_file(p) == station_id]
    assert len(matches) == 1, station_id
    return matches[0]


def _crest(rows: Iterator[ReplayRow] | list[ReplayRow]) -> ReplayRow:
    """The first row at the highest level (a crest often holds for hours)."""
    best: ReplayRow | None = None
    for row in rows:
        if best is None or row.level > best.level:
            best = row
    assert best is not None
    return best


@realdata
@pytest.mark.parametrize(("name", "folder", "pattern"), DATASETS)
def test_every_shipped_station_has_its_recording(
    data_dir: Path, name: str, folder: str, pattern: str
) -> None:
    recorded = {station_id_for_file(path) for path in (data_dir / folder).glob(pattern)}
    assert set(_catalog(name)) == recorded


@realdata
def test_duesseldorf_january_2018_crest(data_dir: Path) -> None:
    path = _recording(data_dir, "rhine_capRhein", "rhein-duesseldorf")
    rows = list(convert_file(path, start=_utc(2018, 1, 1), end=_utc(2018, 2, 1)))
    crest = _crest(rows)
    # README: Düsseldorf 838 cm at 2018-01-08 23:15 CET.
    assert crest == ReplayRow("rhein-duesseldorf", _utc(2018, 1, 8, 22, 15), 838.0)
    assert is_time_ordered(rows)
    assert len(rows) == 31 * 96  # complete January at 15 minutes
    marks = {level.key: level.value for level in _catalog("rhine")["rhein-duesseldorf"].levels}
    assert marks["mark-i"] < crest.level < marks["mark-ii"]


@realdata
def test_mainz_crest_passes_mark_ii(data_dir: Path) -> None:
    path = _recording(data_dir, "rhine_capRhein", "rhein-mainz")
    crest = _crest(convert_file(path, start=_utc(2018, 1, 1), end=_utc(2018, 2, 1)))
    assert (crest.ts, crest.level) == (_utc(2018, 1, 7, 20, 45), 639.0)  # 21:45 CET
    assert crest.level > _catalog("rhine")["rhein-mainz"].levels[-1].value


@realdata
def test_mannheim_spike_is_the_only_value_outside_its_valid_range(data_dir: Path) -> None:
    station = _catalog("rhine")["neckar-mannheimneckar"]
    low, high = station.range
    path = _recording(data_dir, "rhine_capRhein", station.id)
    outside = [row for row in convert_file(path) if not low <= row.level <= high]
    assert [(row.ts, row.level) for row in outside] == [(_utc(2018, 2, 25, 10, 15), 1518.0)]


@realdata
def test_khabarovsk_2013_crest_passes_oya(data_dir: Path) -> None:
    path = _recording(data_dir, "roshydromet_amur_daily", "amur-khabarovsk")
    crest = _crest(convert_file(path, start=_utc(2013, 1, 1), end=_utc(2014, 1, 1)))
    # Daily mean 807 cm on 2013-09-04 (the README's 808 is that day's maximum).
    assert (crest.ts, crest.level) == (_utc(2013, 9, 3, 22), 807.0)
    oya = next(level for level in _catalog("amur")["amur-khabarovsk"].levels if level.key == "oya")
    assert crest.level > oya.value


@realdata
def test_calder_levels_are_metres_with_a_small_rise(data_dir: Path) -> None:
    path = _recording(data_dir, "ea_calder/raw", "calder-hebden-bridge")
    rows = list(convert_file(path))
    assert all(-1.0 < row.level < 2.0 for row in rows)  # metres, not centimetres
    crest = _crest(rows)
    assert crest.ts.date() == datetime(2025, 9, 12, tzinfo=UTC).date()
    assert crest.level == pytest.approx(0.289)


@realdata
def test_converting_a_river_reach_merges_in_time_order(data_dir: Path, tmp_path: Path) -> None:
    paths = [
        _recording(data_dir, "rhine_capRhein", station_id)
        for station_id in ("rhein-mainz", "rhein-koblenz-rhein", "rhein-bonn")
    ]
    out = tmp_path / "jan2018.csv.gz"
    count = convert_files(paths, out, _utc(2018, 1, 1), _utc(2018, 1, 15), None)
    rows = list(read_replay(out))
    assert count == len(rows) == 3 * 14 * 96
    assert is_time_ordered(rows)
    # The crest travels downstream: Mainz, then Koblenz, then Bonn.
    crests = [
        _crest(r for r in rows if r.station_id == sid).ts
        for sid in ("rhein-mainz", "rhein-koblenz-rhein", "rhein-bonn")
    ]
    assert crests == sorted(crests)


def _longest_constant_run(rows: Iterator[ReplayRow]) -> timedelta:
    longest = timedelta(0)
    run_start: ReplayRow | None = None
    for row in rows:
        if run_start is None or row.level != run_start.level:
            run_start = row
        longest = max(longest, row.ts - run_start.ts)
    return longest


@realdata
@pytest.mark.parametrize(("name", "folder", "pattern"), DATASETS)
def test_shipped_flatline_limits_tolerate_real_steady_water(
    data_dir: Path, name: str, folder: str, pattern: str
) -> None:
    catalog = _catalog(name)
    for path in sorted((data_dir / folder).glob(pattern)):
        station = catalog[station_id_for_file(path)]
        run = _longest_constant_run(convert_file(path))
        assert run < timedelta(hours=station.qc.flatline_hours), (station.id, run)
