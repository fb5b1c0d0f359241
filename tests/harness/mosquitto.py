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
SHIPPED_DIR = REPO / "deploy" / "mosquitto"
SHIPPED_CONF = SHIPPED_DIR / "mosquitto.conf"
SHIPPED_ACLS = (SHIPPED_DIR / "acl-gauges", SHIPPED_DIR / "acl-services")
# Where the shipped file puts things inside the broker's container.
CONTAINER_CONFIG = "/mosquitto/config/"
CONTAINER_DATA = "/mosquitto/data/"
# Lines the harness supplies itself: where to listen, where to keep data, how to log in.
_REPLACED = (
    "user",
    "listener",
    "per_listener_settings",
    "use_username_as_clientid",
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
    """Starts, stops, kills and restarts one broker on free ports, keeping its data dir.

    Two ways to run the shipped mosquitto.conf:
    * simple (the default): its global settings and one listener (`port`), anonymous, or
      with `users` / `passwd_file` and, with `acl`, both shipped ACLs as one file;
    * `shipped_auth=PASSWD_DIR`: the file as it ships, both listeners with their own
      accounts and ACLs (the password files made by deploy/mosquitto/mkpasswd.sh); `port`
      is the gauges' listener (1883 in the stack), `service_port` the services' (1884).
    """

    def __init__(
        self,
        workdir: Path,
        users: dict[str, str] | None = None,
        acl: bool = False,
        passwd_file: Path | None = None,
        shipped_auth: Path | None = None,
    ) -> None:
        """`users` makes a password file; `passwd_file` uses one made elsewhere."""
        self.workdir = workdir
        self.port = free_port()
        self.service_port = free_port() if shipped_auth is not None else self.port
        self.users = users or {}
        self.passwd_file = passwd_file
        self.shipped_auth = shipped_auth
        self.acl = acl
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "mosquitto.log"
        (workdir / "data").mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def url_for(self, user: str) -> str:
        return f"mqtt://{user}:{self.users[user]}@127.0.0.1:{self.port}"

    def _harness_lines(self) -> list[str]:
        return [
            # Run as whoever runs the tests: as root, Mosquitto would otherwise switch to the
            # `mosquitto` user and could not write its persistence file into our temp dir.
            f"user {getpass.getuser()}",
            f"persistence_location {self.workdir / 'data'}/",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
        ]

    def _write_config(self) -> Path:
        text = SHIPPED_CONF.read_text()
        if self.shipped_auth is not None:
            lines = self._shipped_lines(text)
        else:
            lines = self._simple_lines(text)
        conf = self.workdir / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n")
        return conf

    def _shipped_lines(self, text: str) -> list[str]:
        """The shipped file with only ports, paths and logging changed."""
        assert self.shipped_auth is not None
        ports = {"1883": self.port, "1884": self.service_port}
        for acl in SHIPPED_ACLS:
            (self.shipped_auth / acl.name).write_text(acl.read_text())
        lines = []
        for line in text.splitlines():
            words = line.split()
            if words[:1] == ["listener"]:
                line = f"listener {ports[words[1]]} 127.0.0.1"
            elif words[:1] in (["user"], ["persistence_location"], ["log_dest"], ["log_type"]):
                continue
            lines.append(line.replace(CONTAINER_CONFIG, f"{self.shipped_auth}/"))
        return lines + self._harness_lines()

    def _simple_lines(self, text: str) -> list[str]:
        global_part = text.split("\nlistener ", 1)[0]
        lines = [
            line for line in global_part.splitlines() if not line.strip().startswith(_REPLACED)
        ]
        lines += [*self._harness_lines(), f"listener {self.port} 127.0.0.1"]
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
            # One listener: the rules of both shipped ACLs together.
            combined = self.workdir / "acl"
            combined.write_text("\n".join(acl.read_text() for acl in SHIPPED_ACLS))
            lines.append(f"acl_file {combined}")
        return lines

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
