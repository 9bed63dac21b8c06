"""Starting the embedded store over a big append-only file: refgate waits while it loads.

After a festival day the AOF holds gigabytes and redis-server answers ``LOADING`` for minutes.
A fixed deadline made ``refgate serve`` fail after 15 s with a traceback, and the next start
(a supervisor's retry, an operator's) launched a second redis-server on the same files while
the first was still loading: twice the memory, and two writers of one AOF. The slow load is
made here with an AOF whose commands take time (``DEBUG SLEEP``), loaded by the real server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from gateway.store.embedded import EmbeddedRedis

pytestmark = pytest.mark.slow

#: Seconds the crafted AOF takes to load; longer than the start timeouts the tests pass.
LOAD_SECONDS = 4.0


def _command(*parts: str) -> str:
    encoded = "".join(f"${len(part.encode())}\r\n{part}\r\n" for part in parts)
    return f"*{len(parts)}\r\n{encoded}"


def slow_aof(data_dir: Path) -> None:
    """An AOF that loads in about LOAD_SECONDS: redis-server answers clients (LOADING) every
    thousand commands, so each pause is followed by a thousand quick writes."""
    directory = data_dir / "redis"
    directory.mkdir(parents=True)
    batches = 5
    body = _command("SELECT", "0")
    for batch in range(batches):
        body += _command("DEBUG", "SLEEP", str(LOAD_SECONDS / batches))
        body += _command("SET", f"k{batch}", "v") * 999
    (directory / "appendonly.aof").write_text(body)


def servers_of(store: EmbeddedRedis) -> list[int]:
    """Pids of the redis-server processes serving this store's socket."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"redis-server" in cmdline and str(store.socket_path).encode() in cmdline:
            found.append(int(entry.name))
    return found


def test_a_store_loading_a_big_aof_is_waited_for(tmp_path: Path) -> None:
    slow_aof(tmp_path)
    store = EmbeddedRedis(tmp_path)
    started = time.monotonic()
    try:
        store.ensure_running(timeout=1.5)  # bounds silence, not a load that makes progress
        assert time.monotonic() - started >= LOAD_SECONDS * 0.8
        assert redis.Redis.from_url(store.url()).get("k4") == b"v"
        assert len(servers_of(store)) == 1
    finally:
        store.stop(force=True)


def test_a_loading_store_left_by_a_starter_that_died_is_never_started_twice(
    tmp_path: Path,
) -> None:
    slow_aof(tmp_path)
    store = EmbeddedRedis(tmp_path)
    # A first starter (a refgate serve killed while its store loads) leaves the server loading.
    starter = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from gateway.store.embedded import "
            "EmbeddedRedis; EmbeddedRedis(Path(sys.argv[1])).ensure_running()",
            str(tmp_path),
        ],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    try:
        deadline = time.monotonic() + 10
        while not servers_of(store):
            assert time.monotonic() < deadline, "the first starter did not start redis-server"
            time.sleep(0.05)
        starter.send_signal(signal.SIGKILL)
        starter.wait(timeout=10)
        first = servers_of(store)

        store.ensure_running(timeout=1.5)
        assert servers_of(store) == first  # the same server, loaded; no second one
        assert redis.Redis.from_url(store.url()).get("k4") == b"v"
    finally:
        if starter.poll() is None:
            starter.kill()
        store.stop(force=True)
        for pid in servers_of(store):
            os.kill(pid, signal.SIGKILL)


def test_serve_says_why_its_store_would_not_start(tmp_path: Path) -> None:
    """A damaged AOF: redis-server quits while loading; refgate serve says so at once, with the
    server's own last lines (what to run), in place of a traceback 15 s later."""
    from tests.test_serve import free_port, refgate

    directory = tmp_path / "redis"
    directory.mkdir()
    (directory / "appendonly.aof").write_text(
        _command("SET", "k", "v") + "*3\r\n$3\r\nSET\r\nnot-resp\r\n"
    )
    started = time.monotonic()
    result = refgate(
        "serve",
        "--port",
        str(free_port()),
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
            "REFGATE_DATA_DIR": str(tmp_path),
        },
    )
    assert result.returncode == 2, result.stderr
    assert "refgate: the embedded store could not start: redis-server exited while starting" in (
        result.stderr
    )
    assert "append only file" in result.stderr  # redis-server's own words, from its log
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 12
