"""The Replay CSV contract: header, offsets required, errors naming file and line."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from floodwatch.replay_csv import (
    ReplayFormatError,
    ReplayRow,
    format_row,
    parse_replay,
    read_replay,
    rebase_shift,
    write_replay,
)

CET = timezone(timedelta(hours=1))
HEADER = "station_id,timestamp,level\n"


def _rows() -> list[ReplayRow]:
    return [
        ReplayRow("rhein-mainz", datetime(2018, 1, 7, 21, 45, tzinfo=CET), 639.0),
        ReplayRow("calder-hebden-bridge", datetime(2025, 9, 12, 9, 15, tzinfo=UTC), 0.289),
        ReplayRow(
            "amur-khabarovsk",
            datetime(2004, 12, 1, 8, tzinfo=timezone(timedelta(hours=10))),
            -275.0,
        ),
        ReplayRow("demo-1", datetime(2024, 3, 1, tzinfo=UTC), 123.456789012345),
    ]


@pytest.mark.parametrize("name", ["replay.csv", "replay.csv.gz"])
def test_round_trip_keeps_instants_and_exact_levels(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    assert write_replay(path, _rows()) == 4

    back = list(read_replay(path))

    assert back == _rows()  # aware datetimes compare by instant
    assert all(row.ts.tzinfo is UTC for row in back)  # UTC inside


def test_written_text_has_the_exact_header_and_utc_offsets(tmp_path: Path) -> None:
    path = tmp_path / "replay.csv"
    write_replay(path, _rows()[:2])
    assert path.read_text(encoding="utf-8") == (
        HEADER
        + "rhein-mainz,2018-01-07T20:45:00+00:00,639\n"
        + "calder-hebden-bridge,2025-09-12T09:15:00+00:00,0.289\n"
    )


def test_format_row_writes_integers_without_a_fraction() -> None:
    row = ReplayRow("a", datetime(2020, 1, 1, tzinfo=UTC), -12.0)
    assert format_row(row) == ["a", "2020-01-01T00:00:00+00:00", "-12"]


def test_reader_accepts_any_offset_and_z_and_converts_to_utc() -> None:
    text = [
        HEADER,
        "a,2018-01-08T23:15:00+01:00,838\n",
        "a,2018-01-08T22:30:00Z,837.5\n",
        "a,2018-01-09 08:00:00+10:00,1\n",  # a space instead of T is still ISO 8601
    ]
    rows = list(parse_replay(text))
    assert [row.ts for row in rows] == [
        datetime(2018, 1, 8, 22, 15, tzinfo=UTC),
        datetime(2018, 1, 8, 22, 30, tzinfo=UTC),
        datetime(2018, 1, 8, 22, 0, tzinfo=UTC),
    ]
    assert [row.level for row in rows] == [838.0, 837.5, 1.0]


def test_naive_timestamp_is_rejected_with_file_and_line() -> None:
    text = [HEADER, "a,2018-01-08T22:15:00+00:00,1\n", "a,2018-01-08T22:30:00,2\n"]
    with pytest.raises(ReplayFormatError, match=r"^flood\.csv:3: .*no UTC offset"):
        list(parse_replay(text, "flood.csv"))


def test_naive_timestamp_in_a_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "flood.csv"
    path.write_text(HEADER + "a,2018-01-08 22:15,1\n", encoding="utf-8")
    with pytest.raises(ReplayFormatError) as caught:
        list(read_replay(path))
    assert f"{path}:2:" in str(caught.value)


@pytest.mark.parametrize(
    "header",
    [
        "station,timestamp,level\n",
        "station_id,timestamp\n",
        "station_id,timestamp,level,quality\n",
        "timestamp,station_id,level\n",
        "a,2018-01-08T22:15:00+00:00,1\n",  # data without a header
    ],
)
def test_bad_header_is_rejected(header: str) -> None:
    with pytest.raises(ReplayFormatError, match=r"^x\.csv:1: header must be exactly"):
        list(parse_replay([header, "a,2018-01-08T22:15:00+00:00,1\n"], "x.csv"))


def test_empty_file_is_rejected() -> None:
    with pytest.raises(ReplayFormatError, match="empty file"):
        list(parse_replay([], "x.csv"))


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("a,2018-01-08T22:15:00+00:00,high", "level 'high' is not a number"),
        ("a,2018-01-08T22:15:00+00:00,", "level '' is not a number"),
        ("a,2018-01-08T22:15:00+00:00,nan", "finite"),
        ("a,2018-01-08T22:15:00+00:00,inf", "finite"),
        ("a,yesterday,1", "not ISO 8601"),
        ("Rhein Mainz,2018-01-08T22:15:00+00:00,1", "station_id 'Rhein Mainz'"),
        ("a,2018-01-08T22:15:00+00:00", "expected 3 fields, got 2"),
        ("a,2018-01-08T22:15:00+00:00,1,2", "expected 3 fields, got 4"),
    ],
)
def test_bad_row_names_line_and_reason(line: str, reason: str) -> None:
    text = [HEADER, "a,2018-01-08T22:00:00+00:00,1\n", line + "\n"]
    with pytest.raises(ReplayFormatError) as caught:
        list(parse_replay(text, "x.csv"))
    assert str(caught.value).startswith("x.csv:3: ")
    assert reason in str(caught.value)


def test_blank_lines_and_a_byte_order_mark_are_tolerated() -> None:
    text = ["\ufeff" + HEADER, "\n", "a,2018-01-08T22:15:00+00:00,1\n", "\n"]
    assert [row.level for row in parse_replay(text)] == [1.0]


def test_reading_streams_and_reports_the_bad_line_only_when_reached() -> None:
    rows = parse_replay([HEADER, "a,2018-01-08T22:15:00+00:00,1\n", "a,bad,1\n"], "x.csv")
    assert next(rows).level == 1.0  # the first row is usable before the bad one is read
    with pytest.raises(ReplayFormatError, match=r"x\.csv:3"):
        next(rows)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "absent.csv"
    with pytest.raises(ReplayFormatError, match="cannot read replay file") as caught:
        list(read_replay(path))
    assert str(path) in str(caught.value)


def test_failed_write_leaves_the_previous_file_intact(tmp_path: Path) -> None:
    path = tmp_path / "replay.csv"
    write_replay(path, _rows())
    before = path.read_bytes()

    def broken() -> Iterator[ReplayRow]:
        yield _rows()[0]
        raise RuntimeError("converter failed")

    with pytest.raises(RuntimeError):
        write_replay(path, broken())
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["replay.csv"]


def test_rows_require_aware_timestamps() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ReplayRow("a", datetime(2020, 1, 1), 1.0)  # noqa: DTZ001 - the point of the test


def test_row_converts_to_a_reading() -> None:
    row = _rows()[0]
    reading = row.to_reading()
    assert (reading.station_id, reading.ts, reading.level) == (row.station_id, row.ts, row.level)


def test_rebase_shift_moves_the_last_reading_to_now(tmp_path: Path) -> None:
    path = tmp_path / "replay.csv"
    write_replay(path, _rows())
    last = max(row.ts for row in _rows())
    now = last + timedelta(days=400, hours=3, minutes=7, seconds=42)
    shift = rebase_shift(path, now)
    assert shift == timedelta(days=400, hours=3, minutes=7)  # whole minutes, not in the future
    assert now - timedelta(minutes=1) < last + shift <= now


def test_rebase_shift_of_an_empty_replay_is_zero(tmp_path: Path) -> None:
    path = tmp_path / "replay.csv"
    write_replay(path, [])
    assert rebase_shift(path, datetime(2020, 1, 1, tzinfo=UTC)) == timedelta(0)
