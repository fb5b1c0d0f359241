"""Convert the real recordings in ../shared/data into Replay CSV rows.

Three source formats, told apart by their header:

- capRhein (German federal/state gauges): `timestamp_CET, W_cm[, Q_m3s]`, 15-minute,
  wall-clock Central European *standard* time all year (UTC+01:00, no summer time).
- Roshydromet Amur daily posts: `date, level_mean_cm, level_min_cm, level_max_cm,
  water_temp_C, KSVO_code`; the daily mean is placed at 08:00 local standard time (the
  morning observation term), at a fixed offset (default +10:00, Khabarovsk).
- Environment Agency Hydrology API: `measure, dateTime, date, value, completeness,
  quality, qcode`; UTC, metres.

Everything streams (gzip + csv), so converting a 100 000-row gauge never holds it in
memory, and the parsing cores take plain text lines so tests can feed inline samples.
"""

from __future__ import annotations

import csv
import enum
import gzip
import heapq
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import TextIO

from floodwatch.errors import FloodwatchError
from floodwatch.replay_csv import ReplayRow, write_replay
from floodwatch.topics import STATION_ID_RE

# capRhein stamps are CET wall-clock time without summer time, i.e. a fixed UTC+01:00.
CET = timezone(timedelta(hours=1), "CET")
# Khabarovsk standard time. The Amur Oblast posts (codes 06xxx) keep UTC+09:00; pass
# `amur_offset` to place them exactly. A one-hour error is small against a daily step.
AMUR_DEFAULT_OFFSET = timedelta(hours=10)
# Roshydromet posts read the staff gauge at the 08:00 local observation term.
AMUR_OBSERVATION_TIME = time(8, 0)


class RecordingError(FloodwatchError):
    """A recording cannot be converted; the message names the file (and line)."""


class RecordingFormat(enum.Enum):
    CAPRHEIN = "caprhein"
    AMUR_DAILY = "amur-daily"
    EA_HYDROLOGY = "ea-hydrology"


# --- station ids from file names --------------------------------------------------------

_GERMAN_LETTERS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})

# One pattern per shared-data naming scheme, each giving a river and a gauge name.
# EA exports carry no river in the name; every one of them here is in the Calder catchment.
_FILE_NAME_RULES: tuple[tuple[re.Pattern[str], str | None], ...] = (
    # 2750010_Rhein_Duesseldorf_15min.csv.gz, 25900700_Rhein_Koblenz_Rhein_15min.csv.gz
    (re.compile(r"^\d+_(?P<river>[^_]+)_(?P<name>.+)_15min\.csv(?:\.gz)?$"), None),
    # 05012_Khabarovsk_Amur_daily_1984-2017.csv.gz
    (re.compile(r"^\d+_(?P<name>.+)_(?P<river>[^_]+)_daily_[\d-]+\.csv(?:\.gz)?$"), None),
    # Hebden-Bridge-level-15min-Qualified.csv.gz
    (re.compile(r"^(?P<name>.+)-level-15min-[A-Za-z]+\.csv(?:\.gz)?$"), "calder"),
)


def slugify(text: str) -> str:
    """Lower-case ASCII with single hyphens: 'Koblenz_Rhein' -> 'koblenz-rhein'."""
    text = text.lower().translate(_GERMAN_LETTERS)
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")


def station_id_for_file(path: Path | str) -> str:
    """The station id a shared-data recording maps to: `<river>-<gauge name>`, slugified.

    The one rule used by the converter and by the test that checks every shipped catalog
    id has its recording, so the two cannot drift apart.
    """
    name = Path(path).name
    for pattern, river in _FILE_NAME_RULES:
        match = pattern.match(name)
        if match:
            station_id = f"{slugify(river or match['river'])}-{slugify(match['name'])}"
            if STATION_ID_RE.match(station_id):
                return station_id
    raise RecordingError(
        f"{path}: cannot derive a station id from the file name; pass a station id explicitly"
    )


# --- the three formats ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    format: RecordingFormat
    time_column: str
    level_column: str
    parse_time: Callable[[str, timedelta], datetime]


def _caprhein_time(text: str, _offset: timedelta) -> datetime:
    ts = datetime.fromisoformat(text)
    return ts.replace(tzinfo=CET) if ts.tzinfo is None else ts


def _amur_time(text: str, offset: timedelta) -> datetime:
    return datetime.combine(date.fromisoformat(text), AMUR_OBSERVATION_TIME, timezone(offset))


def _ea_time(text: str, _offset: timedelta) -> datetime:
    ts = datetime.fromisoformat(text)
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts


_LAYOUTS = (
    _Layout(RecordingFormat.CAPRHEIN, "timestamp_CET", "W_cm", _caprhein_time),
    _Layout(RecordingFormat.AMUR_DAILY, "date", "level_mean_cm", _amur_time),
    _Layout(RecordingFormat.EA_HYDROLOGY, "dateTime", "value", _ea_time),
)
# The columns that identify each format; the header alone decides which parser runs.
_SIGNATURES = {
    RecordingFormat.CAPRHEIN: {"timestamp_CET", "W_cm"},
    RecordingFormat.AMUR_DAILY: {"date", "level_mean_cm", "level_min_cm", "level_max_cm"},
    RecordingFormat.EA_HYDROLOGY: {"measure", "dateTime", "value"},
}


def detect_format(header: Sequence[str]) -> RecordingFormat | None:
    """Which recording format a CSV header belongs to, or None."""
    columns = {column.strip().lstrip("\ufeff") for column in header}
    for recording_format, required in _SIGNATURES.items():
        if required <= columns:
            return recording_format
    return None


@dataclass(frozen=True)
class _RowParser:
    """Turns the fields of one data line into a replay row, for one file's layout."""

    layout: _Layout
    time_index: int
    level_index: int
    station_id: str
    amur_offset: timedelta

    @classmethod
    def for_header(
        cls, header: Sequence[str], station_id: str, amur_offset: timedelta, source: str
    ) -> _RowParser:
        recording_format = detect_format(header)
        if recording_format is None:
            raise RecordingError(
                f"{source}:1: unknown recording header {','.join(header)!r}; expected "
                "capRhein (timestamp_CET,W_cm), Amur daily (date,level_mean_cm,...) or "
                "EA Hydrology (measure,dateTime,...,value,...)"
            )
        layout = next(item for item in _LAYOUTS if item.format is recording_format)
        columns = [column.strip().lstrip("\ufeff") for column in header]
        return cls(
            layout,
            columns.index(layout.time_column),
            columns.index(layout.level_column),
            station_id,
            amur_offset,
        )

    def parse(self, fields: list[str], where: str) -> ReplayRow | None:
        """The row, or None when the line has no level (the sources leave gaps empty)."""
        needed = max(self.time_index, self.level_index) + 1
        if len(fields) < needed:
            raise RecordingError(f"{where}: expected at least {needed} fields, got {len(fields)}")
        raw_level = fields[self.level_index].strip()
        if not raw_level:
            return None
        return ReplayRow(self.station_id, self._time(fields, where), self._level(raw_level, where))

    def _time(self, fields: list[str], where: str) -> datetime:
        raw = fields[self.time_index].strip()
        try:
            return self.layout.parse_time(raw, self.amur_offset).astimezone(UTC)
        except ValueError:
            column = self.layout.time_column
            raise RecordingError(f"{where}: {column} {raw!r} is not a date/time") from None

    def _level(self, raw: str, where: str) -> float:
        column = self.layout.level_column
        try:
            level = float(raw)
        except ValueError:
            raise RecordingError(f"{where}: {column} {raw!r} is not a number") from None
        if not math.isfinite(level):
            raise RecordingError(f"{where}: {column} {raw!r} is not finite")
        return level


# --- conversion ------------------------------------------------------------------------------


def convert_lines(
    lines: Iterable[str],
    station_id: str,
    *,
    source: str = "<recording>",
    start: datetime | None = None,
    end: datetime | None = None,
    amur_offset: timedelta = AMUR_DEFAULT_OFFSET,
) -> Iterator[ReplayRow]:
    """Replay rows (UTC) from the text lines of one recording, with start <= ts < end.

    Rows without a level are skipped (the sources leave gaps empty); anything else that
    does not parse raises RecordingError naming `source` and the line.
    """
    _check_window(start, end)
    if not STATION_ID_RE.match(station_id):
        raise RecordingError(f"{source}: station id {station_id!r} must match [a-z0-9-]{{1,64}}")
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        raise RecordingError(f"{source}: empty file")
    parser = _RowParser.for_header(header, station_id, amur_offset, source)
    for fields in reader:
        if not fields:
            continue
        row = parser.parse(fields, f"{source}:{reader.line_num}")
        if row is not None and _in_window(row.ts, start, end):
            yield row


def _check_window(start: datetime | None, end: datetime | None) -> None:
    for label, value in (("start", start), ("end", end)):
        if value is not None and value.tzinfo is None:
            raise ValueError(f"{label} must be timezone-aware")


def _in_window(ts: datetime, start: datetime | None, end: datetime | None) -> bool:
    return (start is None or ts >= start) and (end is None or ts < end)


def convert_file(
    path: Path,
    *,
    station_id: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    amur_offset: timedelta = AMUR_DEFAULT_OFFSET,
) -> Iterator[ReplayRow]:
    """Stream the replay rows of one recording file (plain or gzipped CSV).

    The station id defaults to the file-name rule of `station_id_for_file`.
    """
    sid = station_id if station_id is not None else station_id_for_file(path)
    _check_window(start, end)
    try:
        handle = _open(path)
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read recording: {exc.strerror}") from None
    with handle:
        try:
            yield from convert_lines(
                handle, sid, source=str(path), start=start, end=end, amur_offset=amur_offset
            )
        except (UnicodeDecodeError, EOFError, gzip.BadGzipFile) as exc:
            raise RecordingError(f"{path}: not a readable CSV recording: {exc}") from None


def _open(path: Path) -> TextIO:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return path.open("r", encoding="utf-8-sig", newline="")


def _ts(row: ReplayRow) -> datetime:
    return row.ts


def is_time_ordered(rows: Iterable[ReplayRow]) -> bool:
    """Whether timestamps never go backwards (equal timestamps are allowed)."""
    previous: datetime | None = None
    for row in rows:
        if previous is not None and row.ts < previous:
            return False
        previous = row.ts
    return True


def _time_ordered(rows: Callable[[], Iterator[ReplayRow]]) -> Iterable[ReplayRow]:
    """One file's rows in time order: streamed if the file already is (checked in a first
    streaming pass; every shared recording is), else sorted in memory."""
    if is_time_ordered(rows()):
        return rows()
    return sorted(rows(), key=_ts)


def convert_files(
    paths: list[Path],
    out: Path,
    start: datetime | None = None,
    end: datetime | None = None,
    station_id: str | None = None,
    *,
    amur_offset: timedelta = AMUR_DEFAULT_OFFSET,
) -> int:
    """Convert recordings into one replay CSV sorted by timestamp; return the row count.

    Every input is read once before `out` is written (the order check), and `out` is
    replaced atomically, so a bad input leaves no half-written replay behind.
    """
    if not paths:
        raise RecordingError("no recording files given")
    if station_id is not None and len(paths) != 1:
        # The same id on several gauges would interleave their levels into one series.
        raise RecordingError("a station id override needs exactly one recording file")
    streams = [
        _time_ordered(
            partial(
                convert_file,
                path,
                station_id=station_id,
                start=start,
                end=end,
                amur_offset=amur_offset,
            )
        )
        for path in paths
    ]
    return write_replay(out, heapq.merge(*streams, key=_ts))
