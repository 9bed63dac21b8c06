"""`refgate serve` as a user runs it: workers share the embedded store, which persists."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

from gateway.store.keys import job_lock
from tests.conftest import BROWSER, TEST_KEYS

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def refgate(*args: str, env: dict[str, str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from gateway.cli import main; main()", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        **kwargs,
    )


@contextmanager
def serving(
    data_dir: Path, port: int, *, own_group: bool = False
) -> Iterator[tuple[str, dict[str, str], subprocess.Popen[str]]]:
    """``refgate serve`` with 2 workers until the block ends: (base URL, its environment, the
    serving process). ``own_group``: in a process group of its own, as a terminal runs it (a
    Ctrl-C goes to the whole group)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "REFGATE_DATA_DIR": str(data_dir),
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from gateway.cli import main; main()",
            "serve",
            "--port",
            str(port),
            "--workers",
            "2",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=own_group,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base + "/readyz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                # Refused, reset, or timed out while the workers boot (a read timeout is not
                # wrapped in URLError): not ready yet.
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read() if process.stdout else ""
                raise AssertionError(f"refgate serve did not become ready:\n{output}")
            time.sleep(0.2)
        yield base, env, process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def call(
    method: str, url: str, key: str | None = None, body: Any = None
) -> tuple[int, Any, dict[str, str]]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    request.add_header("Accept-Language", "en")
    request.add_header("User-Agent", BROWSER["User-Agent"])
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=10) as response:
            raw = response.read()
            return (
                response.status,
                json.loads(raw) if raw.startswith(b"{") else raw,
                dict(response.headers),
            )
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, json.loads(raw) if raw.startswith(b"{") else raw, dict(error.headers)


def campaign_and_link(base: str, env: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """An admin key (made with the CLI), campaign ``tea`` and ann's link: (key, link)."""
    created = refgate("apikey", "create", "--role", "admin", "--name", "ops", env=env)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    status, body, _ = call(
        "POST",
        base + "/api/v1/campaigns",
        key,
        {"slug": "tea", "name": "Tea", "destination_url": "https://shop.example.com/"},
    )
    assert status == 201, body
    status, link, _ = call("POST", base + "/api/v1/campaigns/tea/links", key, {"referrer": "ann"})
    assert status == 201, link
    return key, link


def test_serve_shares_one_embedded_store_and_keeps_data_across_restarts(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    with serving(data_dir, port) as (base, env, server):
        key, link = campaign_and_link(base, env)
        assert link["url"].startswith(base + "/s/")
        for _ in range(10):  # spread over both workers
            status, _, headers = call("GET", link["url"])
            assert status == 302
            assert headers["Location"].startswith("https://shop.example.com/?rg_click=")
        time.sleep(0.5)  # the recorder writes in the background
        _, stats, _ = call("GET", base + "/api/v1/campaigns/tea/stats", key)
        assert stats["clicks"] == 10
        # /metrics adds up every worker's counts (prometheus-client's multiprocess mode),
        # whichever worker answers the scrape.
        for _ in range(4):
            status, text, headers = call("GET", base + "/metrics")
            assert status == 200 and headers["Content-Type"].startswith("text/plain")
            lines = text.decode().splitlines()
            clicks = [line for line in lines if line.startswith("refgate_clicks_total{")]
            assert sum(float(line.rsplit(" ", 1)[1]) for line in clicks) == 10
            assert "refgate_click_seconds_count 10.0" in lines
            assert "refgate_spool_depth 0.0" in lines
        assert (data_dir / "metrics").is_dir()

        # The periodic jobs run in a process of their own, at a lower CPU priority, not in a
        # serving worker: the job locks are held by that process.
        store = redis.Redis(
            unix_socket_path=str(data_dir / "redis" / "redis.sock"), decode_responses=True
        )
        # Its first round comes when it has started, at its lower priority: on a busy machine,
        # seconds after the workers answer. The platform watch runs first in a round and holds
        # its lock for 5 minutes (the webhooks' lock, held 5 s of every 5 s and a round's
        # length, could be missed between two rounds).
        deadline = time.monotonic() + 60
        while (owner := store.get(job_lock("platform-watch"))) is None and (
            time.monotonic() < deadline
        ):
            time.sleep(0.2)
        store.close()
        assert owner is not None, "no job ran"
        jobs_pid = int(str(owner).rsplit(":", 1)[1])
        assert b"jobs" in Path(f"/proc/{jobs_pid}/cmdline").read_bytes()
        assert os.getpriority(os.PRIO_PROCESS, jobs_pid) == 10

    # It stopped with the server.
    assert not Path(f"/proc/{jobs_pid}").exists()
    # Everything it logged, from its first line (the development key, the store starting,
    # gunicorn starting) to its last, was one JSON object per line.
    output = server.stdout.read() if server.stdout else ""
    entries = [json.loads(line) for line in output.splitlines()]
    messages = [entry["msg"] for entry in entries]
    assert messages[0].startswith("REFGATE_SECRET_KEYS is not set"), messages[:3]
    assert any(m.startswith("embedded store started") for m in messages), messages
    assert any(m.startswith("Starting gunicorn") for m in messages), messages
    assert "Shutting down: Master" in messages
    assert {"ts", "level", "logger", "msg", "pid"} <= set(entries[0])
    # The store stopped with the server, and everything is still there after a restart.
    assert not (data_dir / "redis" / "redis.sock").exists()
    with serving(data_dir, port) as (base, _env, _server):
        status, campaign, _ = call("GET", base + "/api/v1/campaigns/tea", key)
        assert status == 200 and campaign["name"] == "Tea"
        _, stats, _ = call("GET", base + "/api/v1/campaigns/tea/stats", key)
        assert stats["clicks"] == 10
        status, _, _ = call("GET", link["url"])
        assert status == 302


def test_serve_refuses_a_bad_configuration(tmp_path: Path) -> None:
    result = refgate(
        "serve",
        "--port",
        str(free_port()),
        env={
            "PATH": "/usr/bin:/bin",
            "REFGATE_DATA_DIR": str(tmp_path),
            "REFGATE_PUBLIC_URL": "ftp://x",
        },
    )
    assert result.returncode == 2
    assert "REFGATE_PUBLIC_URL" in result.stderr


def test_serve_refuses_a_data_dir_it_cannot_write(tmp_path: Path) -> None:
    """One line naming the variable, not a traceback from the first file written there."""
    target = Path("/proc") if os.geteuid() == 0 else tmp_path / "readonly"
    if target != Path("/proc"):
        target.mkdir(mode=0o500)
    result = refgate(
        "serve",
        "--port",
        str(free_port()),
        env={
            "PATH": "/usr/bin:/bin",
            "REFGATE_DATA_DIR": str(target),
            "REFGATE_SECRET_KEYS": TEST_KEYS,
            "REDIS_URL": "redis://127.0.0.1:1/0",
        },
    )
    assert result.returncode == 2, result.stderr
    assert "configuration error: REFGATE_DATA_DIR: cannot write in" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_rejects_bad_flags(tmp_path: Path) -> None:
    result = refgate(
        "serve", "--port", "99999", env={"PATH": "/usr/bin:/bin", "REFGATE_DATA_DIR": str(tmp_path)}
    )
    assert result.returncode == 2
    assert "--port" in result.stderr


def test_serve_starts_its_store_again_when_it_dies(tmp_path: Path) -> None:
    """The embedded store's redis-server killed under a running server: clicks go on
    redirecting (their events spooled), refgate starts the store again from its AOF, and the
    clicks redirected meanwhile are counted once it is back."""
    data_dir = tmp_path / "data"
    with serving(data_dir, free_port()) as (base, env, _server):
        key, link = campaign_and_link(base, env)
        for _ in range(4):
            assert call("GET", link["url"])[0] == 302
        pid = int((data_dir / "redis" / "redis.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        redirected = 0
        for _ in range(6):
            status = call("GET", link["url"])[0]
            # A worker that never loaded the campaign cannot without its store: the busy page
            # (the kernel may have handed every earlier click to the other worker).
            assert status in (302, 503)
            redirected += status == 302
        deadline = time.monotonic() + 30
        while True:
            status, ready, _ = call("GET", base + "/readyz")
            if status == 200 and ready["spool_depth"] == 0:
                break
            assert time.monotonic() < deadline, f"the store did not come back: {ready}"
            time.sleep(0.5)
        assert int((data_dir / "redis" / "redis.pid").read_text()) != pid
        _, stats, _ = call("GET", base + "/api/v1/campaigns/tea/stats", key)
        assert stats["clicks"] == 4 + redirected  # each redirect recorded, once


def children(pid: int) -> dict[int, str]:
    """The processes ``pid`` started, by pid, with their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    return {child: cmdline.decode() for child, cmdline in found.items()}


def test_a_worker_leaving_stops_nothing_of_the_server(tmp_path: Path) -> None:
    """A gunicorn worker leaves by SystemExit through the stack it was forked from: it must not
    stop the jobs process or the store on its way out (it did, and then waited on the jobs
    process until the master killed it, so every shutdown took the whole graceful timeout)."""
    data_dir = tmp_path / "data"
    with serving(data_dir, free_port()) as (base, _env, server):
        kids = children(server.pid)
        jobs = [pid for pid, cmdline in kids.items() if cmdline.rstrip().endswith(" jobs")]
        workers = [pid for pid, cmdline in kids.items() if " serve " in cmdline]
        assert len(jobs) == 1 and len(workers) == 2, kids
        store = (data_dir / "redis" / "redis.pid").read_text()
        os.kill(workers[0], signal.SIGTERM)  # as when gunicorn recycles a worker
        deadline = time.monotonic() + 20
        while True:
            serving_now = [p for p, c in children(server.pid).items() if " serve " in c]
            if len(serving_now) == 2 and workers[0] not in serving_now:
                break  # gunicorn started a new worker
            assert time.monotonic() < deadline, "no new worker"
            time.sleep(0.2)
        time.sleep(1.5)  # a jobs process stopped would have been restarted by now
        assert jobs[0] in children(server.pid), "the jobs process was stopped"
        assert call("GET", base + "/readyz")[0] == 200
        assert (data_dir / "redis" / "redis.pid").read_text() == store
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        took = time.monotonic() - started
    output = server.stdout.read() if server.stdout else ""
    assert "jobs process exited" not in output and "SIGKILL" not in output, output[-3000:]
    assert took < 8, f"stopping took {took:.1f} s (the graceful timeout is 10 s)"


def test_a_ctrl_c_stops_the_server_its_jobs_and_its_store_at_once(tmp_path: Path) -> None:
    """A Ctrl-C at the terminal reaches every process of the group: the server stops its jobs
    process and its store itself, without taking the jobs process's exit for a crash."""
    data_dir = tmp_path / "data"
    with serving(data_dir, free_port(), own_group=True) as (_base, _env, server):
        store = int((data_dir / "redis" / "redis.pid").read_text())
        started = time.monotonic()
        os.killpg(server.pid, signal.SIGINT)
        server.wait(timeout=30)
        took = time.monotonic() - started
    output = server.stdout.read() if server.stdout else ""
    assert "jobs process exited" not in output and "SIGKILL" not in output, output[-3000:]
    assert took < 8, f"stopping took {took:.1f} s (the graceful timeout is 10 s)"
    deadline = time.monotonic() + 10
    while Path(f"/proc/{store}").exists():  # the store goes with the server that started it
        assert time.monotonic() < deadline, "the embedded store is still running"
        time.sleep(0.2)


def test_spooled_events_an_earlier_run_left_are_drained_without_a_click(tmp_path: Path) -> None:
    """A server restarted during an outage: once the store answers, the spool its workers left
    is delivered, whether or not a click comes (a worker's recorder had started at its first
    click, and /readyz said ready with the events still in the spool)."""
    from gateway.recorder import Spool
    from tests.events import click_event

    data_dir = tmp_path / "data"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])  # a worker of the earlier run
    gone.wait(timeout=30)
    spool = Spool(data_dir / "spool")
    path = spool.directory / f"active-{gone.pid}.jsonl"
    path.write_bytes(b"".join(click_event(1, n).to_json() + b"\n" for n in range(3)))
    with serving(data_dir, free_port()) as (_base, _env, _server):
        deadline = time.monotonic() + 30
        while spool.depth() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert spool.depth() == 0
        store = redis.Redis(unix_socket_path=str(data_dir / "redis" / "redis.sock"))
        try:
            for n in range(3):
                assert store.exists(f"rg:{{c1}}:click:1.event{n:08d}")
        finally:
            store.close()
