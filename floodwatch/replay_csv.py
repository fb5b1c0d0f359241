"""The Replay CSV contract (DESIGN.md): `station_id,timestamp,level`, ISO 8601 with offset.

`floodwatch replay` and `floodwatch backtest` read it; the recording converters and the
synthetic demo write it. Reading streams row by row (a recording has millions of rows),
and every error names the file and the line so a hand-edited file can be fixed.
"""

from __future__ import annotations

import csv
import gzip
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, TextIO

from floodwatch.errors import FloodwatchError
from floodwatch.models import Reading
from floodwatch.topics import STATION_ID_RE

HEADER = ("station_id", "timestamp", "level")


class ReplayFormatError(FloodwatchError):
    """A replay file breaks the contract; the message names the file and the line."""


@dataclass(frozen=True, slots=True)
class ReplayRow:
    """One recorded level: station id, aware UTC timestamp, level in the station's unit."""

    station_id: str
    ts: datetime
    level: float

    def __post_init__(self) -> None:
        if self.ts.tzinfo is None:
            raise ValueError("ReplayRow.ts must be timezone-aware")

    def to_reading(self) -> Reading:
        return Reading(station_id=self.station_id, ts=self.ts, level=self.level)


def parse_replay(lines: Iterable[str], source: str = "<replay>") -> Iterator[ReplayRow]:
    """Parse replay CSV text lines lazily; raise ReplayFormatError naming source and line."""
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        raise ReplayFormatError(f"{source}: empty file; expected header {','.join(HEADER)}")
    if header and header[0].startswith("\ufeff"):
        # Spreadsheets save CSV with a byte-order mark; it is not part of the column name.
        header[0] = header[0][1:]
    if tuple(field.strip() for field in header) != HEADER:
        raise ReplayFormatError(
            f"{source}:{reader.line_num}: header must be exactly {','.join(HEADER)!r}, "
            f"got {','.join(header)!r}"
        )
    for fields in reader:
        if not fields:
            continue  # a blank line (often the last one) carries no reading
        yield _parse_row(fields, f"{source}:{reader.line_num}")


def _parse_row(fields: list[str], where: str) -> ReplayRow:
    if len(fields) != len(HEADER):
        raise ReplayFormatError(f"{where}: expected 3 fields, got {len(fields)}")
    station_id, raw_ts, raw_level = (field.strip() for field in fields)
    if not STATION_ID_RE.match(station_id):
        raise ReplayFormatError(f"{where}: station_id {station_id!r} must match [a-z0-9-]{{1,64}}")
    return ReplayRow(station_id, _parse_timestamp(raw_ts, where), _parse_level(raw_level, where))


def _parse_timestamp(text: str, where: str) -> datetime:
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise ReplayFormatError(f"{where}: timestamp {text!r} is not ISO 8601") from None
    if ts.tzinfo is None or ts.utcoffset() is None:
        # A naive time is ambiguous by hours (CET? UTC? summer time?), enough to move a
        # flood crest past a warning; the contract demands the offset instead of guessing.
        raise ReplayFormatError(
            f"{where}: timestamp {text!r} has no UTC offset; write it like "
            f"{text}+00:00 (or the local offset)"
        )
    return ts.astimezone(UTC)


def _parse_level(text: str, where: str) -> float:
    try:
        level = float(text)
    except ValueError:
        raise ReplayFormatError(f"{where}: level {text!r} is not a number") from None
    if not math.isfinite(level):
        raise ReplayFormatError(f"{where}: level {text!r} must be a finite number")
    return level


def read_replay(path: Path) -> Iterator[ReplayRow]:
    """Stream the rows of a replay CSV file (plain or `.gz`)."""
    try:
        handle = _open_text(path, "r")
    except OSError as exc:
        raise ReplayFormatError(f"{path}: cannot read replay file: {exc.strerror}") from None
    with handle:
        try:
            yield from parse_replay(handle, str(path))
        except (UnicodeDecodeError, EOFError, gzip.BadGzipFile) as exc:
            raise ReplayFormatError(f"{path}: not a readable text CSV: {exc}") from None


def rebase_shift(path: Path, now: datetime | None = None) -> timedelta:
    """How far to move a recording's timestamps so that its last reading falls at `now`.

    Replaying an old flood "as if now" keeps the collector's age limits and the
    dashboards' recent-time views meaningful; adding one shift keeps the spacing. The
    shift is whole minutes, so 15-minute marks stay on the minute, and never puts the last
    reading in the future.
    """
    last = max((row.ts for row in read_replay(path)), default=None)
    if last is None:
        return timedelta(0)
    shift = (now or datetime.now(UTC)) - last
    return timedelta(minutes=shift // timedelta(minutes=1))


def format_row(row: ReplayRow) -> list[str]:
    """The CSV fields of a row: UTC timestamp with explicit offset, shortest exact level."""
    ts = row.ts.astimezone(UTC).isoformat()
    level = row.level
    text = str(int(level)) if level.is_integer() else repr(level)
    return [row.station_id, ts, text]


def write_replay_to(handle: TextIO, rows: Iterable[ReplayRow]) -> int:
    """Write the header and rows to an open text handle; return the number of rows."""
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(HEADER)
    count = 0
    for row in rows:
        writer.writerow(format_row(row))
        count += 1
    return count


def write_replay(path: Path, rows: Iterable[ReplayRow]) -> int:
    """Write a replay CSV (gzip when the name ends in `.gz`) atomically; return the row count.

    The rows go to a temporary file that replaces `path` only when complete, so a failed
    conversion never leaves a truncated file that a later replay would take as whole.
    """
    # Same name ending as `path`, so the temporary file gets the same compression.
    tmp = path.with_name(f".partial-{path.name}")
    try:
        with _open_text(tmp, "w") as handle:
            count = write_replay_to(handle, rows)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return count


def _open_text(path: Path, mode: Literal["r", "w"]) -> TextIO:
    # utf-8-sig on read drops a spreadsheet's byte-order mark; newline="" is what csv wants.
    gz = path.name.endswith(".gz")
    if mode == "r":
        if gz:
            return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
        return path.open("r", encoding="utf-8-sig", newline="")
    if gz:
        return gzip.open(path, "wt", encoding="utf-8", newline="")
    return path.open("w", encoding="utf-8", newline="")
