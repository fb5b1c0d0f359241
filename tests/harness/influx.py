"""A real influxd (Debian's `influxdb` package, 1.x) on free ports, for integration tests.

Each server gets its own directory for meta, data, WAL and log, and its own HTTP and RPC
ports, so several can run side by side and a test can stop, kill and restart one.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import orjson
import pytest

from floodwatch.net import free_port
from floodwatch.storage.influx import InfluxStore

INFLUXD = Path("/usr/bin/influxd")
ADMIN_USER = "admin"
ADMIN_PASSWORD = "floodwatch-admin-pw"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0

_CONFIG = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{dir}/meta"
  logging-enabled = false

[data]
  dir = "{dir}/data"
  wal-dir = "{dir}/wal"
  wal-fsync-delay = "0s"
  query-log-enabled = false

[monitor]
  store-enabled = false

[continuous_queries]
  enabled = false

[http]
  bind-address = "127.0.0.1:{http_port}"
  auth-enabled = {auth_enabled}
  log-enabled = false
  pprof-enabled = false

[logging]
  level = "warn"
  suppress-logo = true
"""


def require_influxd() -> Path:
    """The influxd binary; skips without it, but fails under CI, which installs it."""
    found = INFLUXD if INFLUXD.exists() else shutil.which("influxd")
    if found:
        return Path(found)
    reason = "influxd is not installed (Debian package `influxdb`)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI installs it, so this is a broken CI setup")
    pytest.skip(reason)


class InfluxServer:
    """One influxd process; `restart()` keeps its data directory and ports."""

    def __init__(
        self,
        workdir: Path,
        *,
        auth_enabled: bool = False,
        binary: Path | None = None,
    ) -> None:
        self.workdir = workdir
        self.auth_enabled = auth_enabled
        self.admin_user = ADMIN_USER
        self.admin_password = ADMIN_PASSWORD
        self._binary = binary or require_influxd()
        self._http_port: int | None = None
        self._rpc_port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._admin_created = False

    @property
    def url(self) -> str:
        if self._http_port is None:
            raise RuntimeError("the server has not been started")
        return f"http://127.0.0.1:{self._http_port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def log_path(self) -> Path:
        return self.workdir / "influxd.log"

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> InfluxServer:
        if self.running:
            return self
        if self._http_port is not None:
            self._spawn()  # a restart must keep its ports: the data is tied to nothing else
        else:
            self._start_on_free_ports()
        if self.auth_enabled and not self._admin_created:
            # InfluxDB lets anyone create the first user, and only that, on an auth server.
            self.query(
                f"CREATE USER {ADMIN_USER} WITH PASSWORD '{ADMIN_PASSWORD}' WITH ALL PRIVILEGES",
                auth=False,
            )
            self._admin_created = True
        return self

    def _start_on_free_ports(self) -> None:
        # Another process may grab a port between our probe and influxd's bind; then pick
        # new ones rather than fail the whole session.
        for attempt in range(3):
            self._http_port, self._rpc_port = free_port(), free_port()
            try:
                self._spawn()
                return
            except RuntimeError as exc:
                if "address already in use" not in str(exc) or attempt == 2:
                    raise

    def _spawn(self) -> None:
        for name in ("meta", "data", "wal"):
            (self.workdir / name).mkdir(parents=True, exist_ok=True)
        config = self.workdir / "influxdb.conf"
        config.write_text(
            _CONFIG.format(
                dir=self.workdir,
                rpc_port=self._rpc_port,
                http_port=self._http_port,
                auth_enabled=str(self.auth_enabled).lower(),
            )
        )
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [str(self._binary), "-config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                self._reap()
                raise RuntimeError(
                    f"influxd exited with {self._process.returncode} on start:\n{self.log_tail()}"
                )
            if self._ping():
                return
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(
            f"influxd did not answer /ping within {START_TIMEOUT_S} s:\n{self.log_tail()}"
        )

    def _ping(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=1) as response:  # noqa: S310
                return int(response.status) == 204
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        """SIGTERM and wait: a clean shutdown."""
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to flush anything."""
        self._signal(signal.SIGKILL)

    def restart(self) -> InfluxServer:
        self.stop()
        return self.start()

    def _signal(self, signum: signal.Signals) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signum)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._reap()

    def _reap(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> InfluxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- raw HTTP, bypassing the code under test ----------------------------------------

    def query(self, statement: str, database: str | None = None, *, auth: bool = True) -> Any:
        """POST one InfluxQL statement; returns the decoded JSON, raises on an error."""
        params = {"q": statement, "epoch": "ms"}
        if database:
            params["db"] = database
        status, body = self._request(
            "/query",
            params,
            urllib.parse.urlencode(params).encode(),
            {"Content-Type": "application/x-www-form-urlencoded"},
            auth,
        )
        document = orjson.loads(body)
        errors = [result["error"] for result in document.get("results", []) if "error" in result]
        if status != 200 or "error" in document or errors:
            raise RuntimeError(f"{statement!r} failed (HTTP {status}): {body!r}")
        return document

    def write(
        self,
        database: str,
        lines: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> tuple[int, bytes]:
        """POST raw line protocol (precision ms); returns the status and the body."""
        data = lines.encode() if body is None else body
        params = {"db": database, "precision": "ms"}
        return self._request("/write", params, data, headers or {}, True)

    def _request(
        self, path: str, params: dict[str, str], data: bytes, headers: dict[str, str], auth: bool
    ) -> tuple[int, bytes]:
        headers = dict(headers)
        if auth and self.auth_enabled:
            token = base64.b64encode(f"{self.admin_user}:{self.admin_password}".encode())
            headers["Authorization"] = f"Basic {token.decode()}"
        query = urllib.parse.urlencode(params) if path == "/write" else ""
        url = f"{self.url}{path}" + (f"?{query}" if query else "")
        request = urllib.request.Request(url, data=data, headers=headers, method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return int(response.status), bytes(response.read())
        except urllib.error.HTTPError as exc:
            return int(exc.code), bytes(exc.read())


def random_database() -> str:
    return f"test_{uuid.uuid4().hex[:12]}"


def store_for(server: InfluxServer, database: str | None = None, **options: Any) -> InfluxStore:
    """An InfluxStore (not yet open) on `server`, logged in as its admin if auth is on."""
    if server.auth_enabled:
        options.setdefault("username", server.admin_user)
        options.setdefault("password", server.admin_password)
    return InfluxStore(server.url, database or random_database(), **options)


@contextlib.asynccontextmanager
async def opened_influx_store(server: InfluxServer, **options: Any) -> AsyncIterator[InfluxStore]:
    """An open InfluxStore on a fresh database, dropped again afterwards."""
    database = random_database()
    store = store_for(server, database, **options)
    await store.open()
    try:
        yield store
    finally:
        await store.close()
        if server.running:
            # Dropping keeps a session-long influxd from accumulating every test's series.
            server.query(f'DROP DATABASE "{database}"')
