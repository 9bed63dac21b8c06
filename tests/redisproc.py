"""A private redis-server for tests that stop, restart or kill their store.

It is the system ``redis-server`` (as CI installs it) on a free loopback port with its own
directory; the test owns the process and stops only it, never the shared servers. A missing
``redis-server`` fails the test: nothing is skipped silently.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisProcess:
    def __init__(self, directory: Path, *, appendfsync: str = "everysec") -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError(
                "these tests need redis-server on PATH (apt-get install redis-server)"
            )
        self.executable = executable
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.appendfsync = appendfsync
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        # The persistence refgate expects of its store (README, "Durability"): AOF.
        self.process = subprocess.Popen(
            [
                self.executable,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.directory),
                "--appendonly", "yes",
                "--appendfsync", self.appendfsync,
                "--save", "",
                "--daemonize", "no",
                "--logfile", str(self.directory / "redis.log"),
            ],
        )  # fmt: skip
        client = redis.Redis(port=self.port, socket_timeout=1)
        deadline = time.monotonic() + 20
        while True:
            try:
                if client.ping():
                    break
            except redis.exceptions.BusyLoadingError:
                pass
            except (redis.ConnectionError, OSError):
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"redis-server exited: see {self.directory}/redis.log"
                    ) from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not answer: see {self.directory}/redis.log")
            time.sleep(0.05)
        client.close()

    def stop(self, *, kill: bool = False) -> None:
        """SIGTERM (Redis writes what it has and exits) or SIGKILL (a crash)."""
        if self.process is None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None
