"""A real Mosquitto broker for the integration tests, run with the shipped configuration."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import pytest

from floodwatch.net import free_port

REPO = Path(__file__).resolve().parents[2]
SHIPPED_CONF = REPO / "deploy" / "mosquitto" / "mosquitto.conf"
# Lines the harness supplies itself: where to listen, where to keep data, how to log in.
_REPLACED = (
    "user",
    "listener",
    "persistence_location",
    "password_file",
    "acl_file",
    "allow_anonymous",
    "log_dest",
    "log_type",
    "connection_messages",
)


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("mosquitto is not installed; scripts/test installs it")
        pytest.skip("mosquitto is not installed (run scripts/test, which installs it)")
    return found


class MosquittoServer:
    """Starts, stops, kills and restarts one broker on a free port, keeping its data dir."""

    def __init__(
        self,
        workdir: Path,
        users: dict[str, str] | None = None,
        acl: bool = False,
        passwd_file: Path | None = None,
    ) -> None:
        """`users` makes a password file; `passwd_file` uses one made elsewhere (the compose
        stack's deploy/mosquitto/mkpasswd.sh)."""
        self.workdir = workdir
        self.port = free_port()
        self.users = users or {}
        self.passwd_file = passwd_file
        self.acl = acl
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "mosquitto.log"
        (workdir / "data").mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def url_for(self, user: str) -> str:
        return f"mqtt://{user}:{self.users[user]}@127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        lines = [
            line
            for line in SHIPPED_CONF.read_text().splitlines()
            if not line.strip().startswith(_REPLACED)
        ]
        lines += [
            # Run as whoever runs the tests: as root, Mosquitto would otherwise switch to the
            # `mosquitto` user and could not write its persistence file into our temp dir.
            f"user {getpass.getuser()}",
            f"listener {self.port} 127.0.0.1",
            f"persistence_location {self.workdir / 'data'}/",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
        ]
        if self.passwd_file is not None:
            lines += ["allow_anonymous false", f"password_file {self.passwd_file}"]
        elif self.users:
            passwd = self.workdir / "passwd"
            passwd.write_text("")
            for user, password in self.users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password], check=True)
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        if self.acl:
            lines.append(f"acl_file {REPO / 'deploy' / 'mosquitto' / 'acl'}")
        conf = self.workdir / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n")
        return conf

    def start(self) -> MosquittoServer:
        conf = self._write_config()
        self.process = subprocess.Popen(
            [mosquitto_binary(), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"mosquitto exited at start: {err}{self._log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.port}{self._log_tail()}")

    def _log_tail(self) -> str:
        if self.log_path.exists():
            return "\n" + "\n".join(self.log_path.read_text().splitlines()[-20:])
        return ""

    def stop(self) -> None:
        """Graceful stop: Mosquitto saves its persistence file on SIGTERM."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)
        self.process = None

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> MosquittoServer:
        return self.start()

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.kill()
