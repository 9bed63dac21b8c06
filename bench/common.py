"""Helpers shared by the benchmarks: a store, seeded data, gunicorn processes and wrk runs."""

from __future__ import annotations

import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BROWSER_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
SECRET = "bench-secret-0123456789abcdef0123"  # noqa: S105 - a throwaway benchmark key


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Environment:
    data_dir: Path
    redis_url: str

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "REFGATE_DATA_DIR": str(self.data_dir),
            "REDIS_URL": self.redis_url,
            "REFGATE_SECRET_KEYS": SECRET,
            # wrk sends each request with its own X-Forwarded-For, as a load balancer would:
            # clicks come from many networks, not one flooding address.
            "REFGATE_TRUSTED_PROXIES": "1",
            "OMP_NUM_THREADS": "1",
            "PYTHONPATH": str(ROOT),
        }


@contextmanager
def environment() -> Iterator[Environment]:
    """An embedded store in a temporary data dir (or REDIS_URL if set), emptied first."""
    from gateway.store.embedded import EmbeddedRedis

    with tempfile.TemporaryDirectory(prefix="refgate-bench-") as tmp:
        data_dir = Path(tmp)
        url = os.environ.get("REDIS_URL")
        embedded = None
        if not url:
            embedded = EmbeddedRedis(data_dir)
            embedded.ensure_running()
            url = embedded.url()
        try:
            yield Environment(data_dir, url)
        finally:
            if embedded is not None:
                embedded.stop(force=True)


def wait_for_redis(url: str, process: subprocess.Popen[bytes], timeout: float, what: str) -> None:
    """Wait until the redis-server ``process`` started answers at ``url``; RuntimeError naming
    ``what`` when it exits or does not answer within ``timeout`` seconds."""
    import redis

    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"{what} did not start") from None
                time.sleep(0.05)
    finally:
        client.close()


def pin_store(redis_url: str, cpus: set[int]) -> int:
    """Run the (local) Redis server on ``cpus`` only, as a store on a machine of its own would
    be; returns its pid."""
    pid = store_pid(redis_url)
    os.sched_setaffinity(pid, cpus)
    return pid


def seed(env: Environment, links: int = 1) -> list[str]:
    """Create a campaign and share links of ``links`` sharers; returns the links' paths."""
    os.environ.update({k: v for k, v in env.env().items() if k.startswith(("REFGATE_", "REDIS_"))})
    from gateway import create_app

    app = create_app()
    services = app.extensions["refgate"]
    services.store.main.flushdb()
    campaign = services.campaigns.create(
        {
            "slug": "bench",
            "name": "Bench",
            "destination_url": "https://shop.example.com/landing?src=share",
        },
        actor="bench",
    )
    paths = [f"/s/{services.links.mint(campaign, f'sharer-{n}').token}" for n in range(links)]
    services.close()
    return paths


@contextmanager
def gunicorn(
    app_spec: str,
    env: dict[str, str],
    workers: int,
    worker_class: str = "sync",
    threads: int = 1,
    cpus: set[int] | None = None,
) -> Iterator[str]:
    """gunicorn serving ``app_spec``; with ``cpus``, the master and its workers (forked after
    the affinity is set) run on those CPUs only. The gateway runs as ``refgate serve`` runs
    it: its periodic jobs in a ``refgate jobs`` process beside the workers."""
    port = free_port()
    jobs = None
    if app_spec.startswith("gateway:"):
        env = {**env, "REFGATE_JOBS_IN_WORKERS": "0"}
        jobs = subprocess.Popen(
            [sys.executable, "-c", "from gateway.cli import main; main()", "jobs"],
            env=env, cwd=str(ROOT),
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
        )  # fmt: skip
    process = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", app_spec,
            "--bind", f"127.0.0.1:{port}",
            "--workers", str(workers),
            "--worker-class", worker_class,
            "--threads", str(threads),
            "--log-level", "warning",
            "--backlog", "2048",
            "--no-control-socket",
        ],
        env=env, cwd=str(ROOT),
        preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(base + "/nothing", timeout=1)
            except urllib.error.HTTPError:
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{app_spec} did not start") from None
                time.sleep(0.2)
        if jobs is not None:
            # Its start (imports, the app, the first round of jobs) takes a second or more of
            # CPU, at a low priority, so it can run late: measured, it would be charged to the
            # clicks of whatever window it overlaps (33 us a click in an 8 s run), a cost paid
            # once per deployment, not per click.
            _wait_until_idle(jobs.pid, deadline=time.monotonic() + 60)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        if jobs is not None:
            jobs.send_signal(signal.SIGTERM)
            jobs.wait(timeout=30)


def _process_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _wait_until_idle(pid: int, deadline: float) -> None:
    """Wait until process ``pid`` spends next to no CPU for a second (or until ``deadline``)."""
    quiet, last = 0, _process_cpu(pid)
    while quiet < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
        now = _process_cpu(pid)
        quiet = quiet + 1 if now - last < 0.02 else 0
        last = now


@dataclass
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx_3xx: int
    errors: int


def wrk(
    base: str,
    paths: list[str],
    *,
    seconds: int,
    connections: int,
    threads: int = 2,
    cpus: set[int] | None = None,
) -> WrkResult:
    """wrk against ``base``, each request taking the next of ``paths`` (as shares spread)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        quoted = ",".join(f'"{p}"' for p in paths)
        script.write(
            f"local paths = {{{quoted}}}\n"
            # Clicks pick a link at random (people, not a round-robin script: the timing
            # detector would rightly see clockwork) from one of 4096 client addresses.
            "math.randomseed(os.time())\n"
            "local ips = {}\n"
            "for i = 1, 4096 do\n"
            "  ips[i] = string.format('%d.%d.%d.%d', math.random(1, 223), math.random(0, 255),\n"
            "    math.random(0, 255), math.random(1, 254))\n"
            "end\n"
            "request = function()\n"
            "  return wrk.format('GET', paths[math.random(#paths)],\n"
            # A headers table replaces wrk's -H headers: the browser's go in it too (without a
            # User-Agent the gateway answers a link preview, not a click).
            "    {['X-Forwarded-For'] = ips[math.random(#ips)],\n"
            f"     ['User-Agent'] = '{BROWSER_UA}', ['Accept-Language'] = 'zh-CN,zh;q=0.9'}})\n"
            "end\n"
        )
    output = subprocess.run(
        [
            "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
            "-H", f"User-Agent: {BROWSER_UA}",
            "-H", "Accept-Language: zh-CN,zh;q=0.9",
            "-s", script.name,
            base,
        ],
        capture_output=True, text=True, check=True,
        preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
    ).stdout  # fmt: skip
    os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    latency = dict(re.findall(r"^\s+(\d+)%\s+([\d.]+\w+)", output, re.M))
    non = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return WrkResult(
        requests_per_second=rps,
        p50_ms=_ms(latency["50"]),
        p99_ms=_ms(latency["99"]),
        non_2xx_3xx=int(non.group(1)) if non else 0,
        errors=sum(int(g) for g in errors.groups()) if errors else 0,
    )


def _ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def store_pid(redis_url: str) -> int:
    """The pid of the (local) Redis server behind ``redis_url``."""
    import redis

    client = redis.Redis.from_url(redis_url)
    pid = int(client.info("server")["process_id"])
    client.close()
    return pid


@contextmanager
def cpu_per_request(store: int) -> Iterator[dict[str, float]]:
    """CPU seconds spent while the block runs, by part: gunicorn (master and workers), the
    gateway's jobs process, the store (pid ``store``), wrk (a child waited for in the block) and
    the whole machine (every process and the kernel, from /proc/stat). Divide by the requests
    served to see where a request's CPU goes: on a saturated box the throughput ratio is the
    inverse ratio of these totals."""
    parts: dict[str, float] = {}
    before, children, machine = _cpu_by_part(store), os.times(), _machine_busy()
    yield parts
    after, children_after = _cpu_by_part(store), os.times()
    for part in ("gunicorn", "jobs", "store"):
        parts[part] = after.get(part, 0.0) - before.get(part, 0.0)
    parts["wrk"] = (children_after.children_user - children.children_user) + (
        children_after.children_system - children.children_system
    )
    parts["machine"] = _machine_busy() - machine


_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_by_part(store: int) -> dict[str, float]:
    found: dict[str, float] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as fh:
                stat = fh.read()
            with open(f"/proc/{name}/cmdline", "rb") as fh:
                command = fh.read().replace(b"\0", b" ")
        except OSError:
            continue  # gone meanwhile
        if int(name) == store:
            part = "store"
        elif b"gunicorn" in command:
            part = "gunicorn"
        elif command.endswith(b" jobs ") and b"gateway.cli" in command:
            part = "jobs"
        else:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        found[part] = found.get(part, 0.0) + (int(fields[11]) + int(fields[12])) / _TICKS
    return found


def _machine_busy() -> float:
    with open("/proc/stat") as fh:
        ticks = [int(value) for value in fh.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / _TICKS  # all but idle and iowait


def median(values: list[float]) -> float:
    return statistics.median(values)
