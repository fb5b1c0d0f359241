"""One SQLite connection owned by one worker thread, for the asyncio services.

sqlite3 blocks, so every job runs on a dedicated single-thread executor: the event loop
never waits on the disk, and the connection is never shared between threads. Jobs are
plain functions that receive the connection as their first argument. SQLite and OS errors
become one domain error, `StoreUnavailable`, naming the file.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from floodwatch.errors import StoreUnavailable

T = TypeVar("T")


class SQLiteThread:
    def __init__(self, path: Path, schema: Sequence[str], label: str) -> None:
        self.path = path
        self.label = label
        self._schema = tuple(schema)
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None  # touched only on the worker thread

    async def open(self) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.label)
        await self._submit(self._connect)

    async def close(self) -> None:
        if self._executor is None:
            return
        try:
            await self._submit(self._disconnect)
        finally:
            # The close job ran after every job queued before it, so nothing is pending.
            self._executor.shutdown(wait=False)
            self._executor = None

    async def run(self, job: Callable[..., T], *args: Any) -> T:
        """Run `job(connection, *args)` on the worker thread."""
        return await self._submit(lambda: job(self._connection(), *args))

    async def _submit(self, function: Callable[[], T]) -> T:
        if self._executor is None:
            raise RuntimeError(f"{self.label} {self.path} is not open; call open() first")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, function)
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(f"{self.label} {self.path}: {exc}") from exc

    # --- worker thread only -------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise sqlite3.OperationalError("the database is not connected")
        return self._conn

    def _connect(self) -> None:
        if self._conn is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: transactions are opened explicitly where they are wanted.
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            # With WAL, NORMAL loses nothing on a process crash, only on power loss.
            conn.execute("PRAGMA synchronous=NORMAL")
            # Several services may share one state file.
            conn.execute("PRAGMA busy_timeout=5000")
            for statement in self._schema:
                conn.execute(statement)
        except sqlite3.Error:
            conn.close()
            raise
        self._conn = conn

    def _disconnect(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def write_rows(
    conn: sqlite3.Connection,
    sql: str,
    to_row: Callable[[Any], tuple[Any, ...]],
    items: Sequence[Any],
) -> None:
    """executemany in one transaction; rows are built (and checked) before BEGIN, so one
    bad item stores nothing."""
    rows = [to_row(item) for item in items]
    conn.execute("BEGIN")
    try:
        conn.executemany(sql, rows)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
