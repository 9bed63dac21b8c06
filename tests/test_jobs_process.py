"""`refgate jobs`: the periodic jobs in a process of their own (refgate serve starts one)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from gateway.jobsprocess import JobsProcess
from gateway.services import Services
from gateway.store import keys
from tests.conftest import BROWSER, TEST_KEYS

pytestmark = pytest.mark.slow


def environment(tmp_path: Path, store_url: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
        "REFGATE_DATA_DIR": str(tmp_path / "data"),
        "REDIS_URL": store_url,
        "REFGATE_SECRET_KEYS": TEST_KEYS,
    }


def refgate_jobs(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from gateway.cli import main; main()", "jobs", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_jobs_once_runs_what_is_due_and_reads_the_clicks(
    tmp_path: Path, store_url: str, services: Services, client: FlaskClient
) -> None:
    campaign = services.campaigns.create(
        {"slug": "tea", "name": "Tea", "destination_url": "https://shop.example.com/"},
        actor="test",
    )
    link = services.links.mint(campaign, "ann")
    for _ in range(3):
        assert client.get(f"/s/{link.token}", headers=BROWSER).status_code == 302
    services.gateway._recorder.flush()
    cursors = keys.campaign_keys(campaign.id).job_cursors
    assert services.store.main.hget(cursors, "flagger_cursor") is None

    env = environment(tmp_path, store_url)
    first = refgate_jobs("--once", env=env)
    assert first.returncode == 0, first.stderr
    assert "flagger" in first.stdout and "webhooks" in first.stdout
    # The flagger read the campaign's clicks: its cursor is at the last event.
    last = services.store.main.xrevrange(keys.campaign_keys(campaign.id).events, count=1)
    assert services.store.main.hget(cursors, "flagger_cursor") == last[0][0]

    # Shared jobs hold a store lock for their interval (webhooks 5 s, the flagger 30 s)...
    webhooks_ttl = services.store.main.pttl(keys.job_lock("webhooks"))
    assert 0 < webhooks_ttl <= 5000
    assert 5000 < services.store.main.pttl(keys.job_lock("flagger")) <= 30000
    # ...so another run finds them not due. Only the flagger is asserted: starting a Python
    # process on a loaded machine (CI beside other work) has taken longer than the webhooks
    # job's 5 s, after which it is rightly due again.
    started = time.monotonic()
    second = refgate_jobs("--once", env=env)
    assert second.returncode == 0, second.stderr
    assert "flagger" not in second.stdout
    if time.monotonic() - started < webhooks_ttl / 1000:
        assert "webhooks" not in second.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_jobs_once_fails_when_the_store_cannot_be_reached(tmp_path: Path) -> None:
    """Under cron the exit status is what is watched: with the store unreachable (a wrong
    REDIS_URL, an outage) every job is skipped, and that is a failure, not "nothing was due"."""
    env = environment(tmp_path, f"redis://127.0.0.1:{free_port()}/0")
    result = refgate_jobs("--once", env=env)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "nothing was due" not in result.stdout
    assert "job(s) could not run" in result.stderr
    assert "flagger (store unavailable" in result.stderr
    assert "Traceback" not in result.stderr


def test_jobs_process_logs_json_from_its_first_line(tmp_path: Path) -> None:
    """refgate serve's jobs process logs as its workers do: building its app already warns (here
    the store cannot be reached), and those lines are JSON too."""
    env = environment(tmp_path, f"redis://127.0.0.1:{free_port()}/0")
    process = subprocess.Popen(
        JOBS, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        time.sleep(6)  # the app is built, the first tick has run and found no store
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    lines = [line for line in stderr.splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # raises on a line that is not JSON
    messages = [entry["msg"] for entry in entries]
    assert any(m.startswith("no model loaded at start") for m in messages), messages
    # Once, although it ticked every 0.2 s: an outage is logged when it starts (and every few
    # minutes), not by every job on every tick.
    skipped = [m for m in messages if m.startswith("store unavailable, periodic jobs skipped")]
    assert len(skipped) == 1, messages
    assert "flagger" in skipped[0]


def test_jobs_rejects_bad_flags(tmp_path: Path, store_url: str) -> None:
    result = refgate_jobs("--period", "0", env=environment(tmp_path, store_url))
    assert result.returncode == 2
    assert "--period" in result.stderr


def store_client(url: str) -> Any:
    if url.startswith("redis+cluster://"):
        return redis.RedisCluster.from_url(url.replace("redis+cluster://", "redis://"))
    return redis.Redis.from_url(url)


JOBS = [sys.executable, "-c", "from gateway.cli import main; main()", "jobs", "--period", "0.2"]


def wait_for(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_jobs_process_runs_niced_and_stops_on_sigterm(tmp_path: Path, store_url: str) -> None:
    process = subprocess.Popen(JOBS, env=environment(tmp_path, store_url))
    store = store_client(store_url)
    try:
        wait_for(
            lambda: process.poll() is None and os.getpriority(os.PRIO_PROCESS, process.pid) == 10
        )
        # The first tick runs at once, under this process's name.
        wait_for(lambda: store.get(keys.job_lock("webhooks")) is not None)
        assert store.get(keys.job_lock("webhooks")).decode().endswith(f":{process.pid}")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        store.close()


def test_jobs_process_stops_when_its_server_is_gone(tmp_path: Path, store_url: str) -> None:
    # A parent that dies without stopping it (a server killed outright): the orphan stops.
    script = " ".join(shlex.quote(part) for part in JOBS)
    parent = subprocess.Popen(
        ["bash", "-c", f"{script} & echo $!; sleep 8"],
        env=environment(tmp_path, store_url),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    pid = int(parent.stdout.readline())
    assert parent.wait(timeout=30) == 0
    wait_for(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), seconds=20)


def test_supervisor_restarts_a_jobs_process_that_dies_and_stops_it(
    tmp_path: Path, store_url: str
) -> None:
    # A stand-in for the jobs process (only its being kept alive is under test here).
    supervisor = JobsProcess([sys.executable, "-c", "import sys, time; time.sleep(60)"])
    supervisor.start()
    try:
        deadline = time.monotonic() + 10
        while supervisor.pid is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        first = supervisor.pid
        os.kill(first, signal.SIGKILL)
        while supervisor.pid == first or supervisor.restarts == 0:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        second = supervisor.pid
        assert second is not None and second != first
    finally:
        supervisor.stop()
    assert not Path(f"/proc/{second}").exists() or _zombie(second)


def _zombie(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z"
