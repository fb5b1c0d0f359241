"""The collector as a real OS process, so tests can kill -9 it in the middle of a stream."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from floodwatch.net import free_port


class CollectorProcess:
    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        components: tuple[str, ...] = ("collector",),
    ) -> None:
        self.env = env
        self.log_path = log_path
        # The collector alone by default: a forecaster in the same process would share its
        # CPU in the throughput figures and its default client id across test processes.
        self.components = components
        self.http_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> CollectorProcess:
        env = {**os.environ, **self.env, "FLOODWATCH_HTTP_PORT": str(self.http_port)}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "floodwatch.cli", "run", "--components", *self.components],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"collector exited at start:\n{self.log_tail()}")
            health = self.health()
            if health and health.get("mqtt") == "connected":
                return self
            time.sleep(0.1)
        raise RuntimeError(f"collector did not connect:\n{self.log_tail()}")

    def health(self) -> dict[str, Any] | None:
        url = f"http://127.0.0.1:{self.http_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return dict(json.loads(response.read()))
        except urllib.error.HTTPError as exc:
            return dict(json.loads(exc.read()))
        except OSError:
            return None

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.http_port}/metrics"
        with urllib.request.urlopen(url, timeout=2) as response:
            return str(response.read().decode())

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> int:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            return self.process.wait(timeout=30)
        return self.process.returncode if self.process else 0
