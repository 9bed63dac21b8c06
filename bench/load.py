"""Load: refgate under gunicorn as `refgate serve` runs it, against the bare redirect, then a surge.

1. Throughput: the scored click path (GET /s/<token>, 2,000 sharers' links picked at random, from
   4,096 client addresses) and the bare Flask 302 (bench/bare_app.py), both under gunicorn with
   the same worker class, workers and threads, alternately for a few rounds; wrk when installed
   (apt-get install wrk), else a Python load generator. Prints requests/s, p50/p99 and the ratio
   scored/bare (goal >= 0.7).
2. Surge: an open-loop generator (requests sent on a schedule, latency counted from the scheduled
   time, so a slow server cannot slow the load down) ramps the offered rate from half the
   measured saturation to several times it and back. Per phase: served (answered, not shed),
   shed (503 from admission control), limited (429), failed (other 5xx, errors, timeouts), and
   the latency of admitted requests (goal: p99 < 50 ms at 3x, no 5xx but 503).
3. The cost of the click path's metrics (prometheus-client, multiprocess mode) per click, against
   the in-process cost of a click.

The machine's load average is printed with each figure: on shared cores, compare figures from
the same run only.

    .venv/bin/python bench/load.py [--seconds 10] [--rounds 2] [--surge 0.5,1,2,3,4,2,1,0.5]
                                   [--layout shared|store-apart]

``--layout store-apart`` pins Redis to a core of its own and everything else to the others, as a
production store runs on its own machine; the default shares every core.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    BROWSER_UA,
    WrkResult,
    environment,
    gunicorn,
    median,
    pin_store,
    seed,
    wrk,
)
from gateway.cli import default_workers
from gateway.server import worker_threads
from gateway.settings import Settings
from gateway.worker import SPEC as WORKER

BARE, GATEWAY = "bench.bare_app:app", "gateway:create_app()"


def loadavg() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f}/{five:.2f}"


# -- a Python load generator -----------------------------------------------------------------


@dataclass
class Tally:
    statuses: dict[int, int] = field(default_factory=dict)
    admitted_ms: list[float] = field(default_factory=list)
    shed_ms: list[float] = field(default_factory=list)
    errors: int = 0
    all_p99: float = float("nan")

    def add(self, status: int, ms: float) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        (self.shed_ms if status in (503, 429) else self.admitted_ms).append(ms)

    @property
    def total(self) -> int:
        return sum(self.statuses.values()) + self.errors


class Client:
    """Keep-alive HTTP/1.1 connections to one server, at most ``limit`` of them."""

    def __init__(self, host: str, port: int, limit: int) -> None:
        self.host, self.port, self.limit = host, port, limit
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.opened = 0
        self.freed = asyncio.Condition()

    async def connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        async with self.freed:
            while not self.idle and self.opened >= self.limit:
                await self.freed.wait()
            if self.idle:
                return self.idle.pop()
            self.opened += 1
        try:
            return await asyncio.open_connection(self.host, self.port)
        except OSError:
            await self.release(None)
            raise

    async def release(self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None) -> None:
        async with self.freed:
            if conn is None:
                self.opened -= 1
            else:
                self.idle.append(conn)
            self.freed.notify()

    async def get(self, path: str, address: str) -> int:
        conn = await self.connection()
        reader, writer = conn
        try:
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\nUser-Agent: {BROWSER_UA}\r\n"
                f"Accept-Language: zh-CN,zh;q=0.9\r\nX-Forwarded-For: {address}\r\n\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length, close = 0, False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
            if length:
                await reader.readexactly(length)
        except BaseException:
            writer.close()
            await self.release(None)
            raise
        if close:
            writer.close()
            await self.release(None)
        else:
            await self.release(conn)
        return status

    async def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


def addresses(n: int = 4096) -> list[str]:
    rng = random.Random(7)
    return [
        f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        for _ in range(n)
    ]


async def open_loop(
    base: str, paths: list[str], rate: float, seconds: float, connections: int
) -> Tally:
    """Send ``rate`` requests/s for ``seconds`` on a fixed schedule; latency from the schedule."""
    host, port = base.removeprefix("http://").split(":")
    client = Client(host, int(port), connections)
    tally = Tally()
    rng = random.Random(11)
    ips = addresses()
    loop = asyncio.get_running_loop()

    async def one(scheduled: float) -> None:
        try:
            status = await asyncio.wait_for(
                client.get(rng.choice(paths), rng.choice(ips)), timeout=10
            )
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            tally.errors += 1
            return
        tally.add(status, (loop.time() - scheduled) * 1000)

    count = int(rate * seconds)
    start = loop.time() + 0.05
    tasks = []
    sent = 0
    while sent < count:
        now = loop.time()
        due = min(count, int((now - start) * rate) + 1)
        while sent < due:
            tasks.append(asyncio.create_task(one(start + sent / rate)))
            sent += 1
        await asyncio.sleep(0.001)
    await asyncio.gather(*tasks)
    await client.close()
    return tally


async def closed_loop(base: str, paths: list[str], seconds: float, connections: int) -> Tally:
    """``connections`` clients, each sending its next request when the last is answered."""
    host, port = base.removeprefix("http://").split(":")
    client = Client(host, int(port), connections)
    tally = Tally()
    rng = random.Random(13)
    ips = addresses()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds

    async def user() -> None:
        while loop.time() < deadline:
            started = loop.time()
            try:
                status = await asyncio.wait_for(
                    client.get(rng.choice(paths), rng.choice(ips)), timeout=10
                )
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
                tally.errors += 1
                continue
            tally.add(status, (loop.time() - started) * 1000)

    await asyncio.gather(*(user() for _ in range(connections)))
    await client.close()
    return tally


PACED = """
local paths = {%(paths)s}
local spacing = %(spacing)f
local threads = {}
math.randomseed(%(seed)d)
local ips = {}
for i = 1, 4096 do
  ips[i] = string.format('%%d.%%d.%%d.%%d', math.random(1, 223), math.random(0, 255),
    math.random(0, 255), math.random(1, 254))
end
function setup(thread) table.insert(threads, thread) end
function init(args) counts = {} end
function delay() return spacing * (0.5 + math.random()) end
request = function()
  local ip = ips[math.random(#ips)]
  -- a headers table replaces wrk's -H headers: the browser's go here too
  return wrk.format('GET', paths[math.random(#paths)], {['X-Forwarded-For'] = ip,
    ['User-Agent'] = '%(ua)s', ['Accept-Language'] = 'zh-CN,zh;q=0.9'})
end
response = function(status, headers, body) counts[status] = (counts[status] or 0) + 1 end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get('counts')) do total[k] = (total[k] or 0) + v end
  end
  for k, v in pairs(total) do io.write(string.format('status %%d %%d\\n', k, v)) end
  local e = summary.errors
  io.write(string.format('errors %%d\\n', e.connect + e.read + e.write + e.timeout))
  io.write(string.format('latency %%f %%f\\n', latency:percentile(50) / 1000,
    latency:percentile(99) / 1000))
end
"""


def wrk_paced(
    base: str, paths: list[str], rate: float, seconds: float, spacing_ms: float = 100.0
) -> tuple[Tally, float, float]:
    """wrk offering about ``rate`` requests/s: each connection waits ``spacing_ms`` (randomised)
    between its requests, so the rate holds while answers are fast (sheds are). Returns the
    status counts and wrk's p50/p99 over every request."""
    connections = max(2, int(rate * spacing_ms / 1000))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            PACED
            % {
                "paths": ",".join(f'"{p}"' for p in paths),
                "spacing": spacing_ms,
                "seed": random.randrange(1 << 30),
                "ua": BROWSER_UA,
            }
        )
    output = subprocess.run(
        [
            "wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s",
            "-H", f"User-Agent: {BROWSER_UA}", "-H", "Accept-Language: zh-CN,zh;q=0.9",
            "-s", script.name, base,
        ],
        capture_output=True, text=True, check=True,
        # The load runs at normal priority even when the probe beside it is raised.
        preexec_fn=lambda: os.setpriority(os.PRIO_PROCESS, 0, 0),
    ).stdout  # fmt: skip
    os.unlink(script.name)
    tally = Tally()
    p50 = p99 = float("nan")
    for line in output.splitlines():
        parts = line.split()
        if parts[:1] == ["status"]:
            tally.statuses[int(parts[1])] = int(parts[2])
        elif parts[:1] == ["errors"]:
            tally.errors = int(parts[1])
        elif parts[:1] == ["latency"]:
            p50, p99 = float(parts[1]), float(parts[2])
    return tally, p50, p99


def surge_phase(
    base: str, paths: list[str], rate: float, seconds: float, probe_rate: float
) -> tuple[Tally, Tally]:
    """wrk offers the load; a light open-loop probe beside it samples what clients see, its
    latencies split into admitted and shed. Returns (wrk's counts, the probe's)."""
    found: list[tuple[Tally, float, float]] = []
    thread = threading.Thread(
        target=lambda: found.append(wrk_paced(base, paths, rate, seconds)), daemon=True
    )
    thread.start()
    time.sleep(min(1.0, seconds / 4))  # let the load build up first
    probe = asyncio.run(open_loop(base, paths, probe_rate, seconds - min(1.0, seconds / 4), 64))
    thread.join()
    tally, _, p99 = found[0]
    tally.all_p99 = p99
    return tally, probe


def click_histogram(base: str) -> dict[float, float]:
    """The click latency histogram from the gateway's /metrics: upper bound (s) -> count, added
    up over the workers."""
    import urllib.error
    import urllib.request

    for attempt in range(5):
        try:
            with urllib.request.urlopen(base + "/metrics", timeout=10) as response:
                text = response.read().decode()
            break
        except urllib.error.URLError:  # scrapes are never shed, but a surge may time one out
            if attempt == 4:
                raise
            time.sleep(0.5)
    counts: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith("refgate_click_seconds_bucket{"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            counts[float(bound)] = counts.get(float(bound), 0.0) + float(line.rsplit(" ", 1)[1])
    return counts


def histogram_delta(before: dict[float, float], after: dict[float, float]) -> dict[float, float]:
    return {bound: count - before.get(bound, 0.0) for bound, count in after.items()}


def histogram_quantile(cumulative: dict[float, float], q: float) -> float:
    """Milliseconds at quantile ``q`` of a cumulative histogram, interpolated in its bucket (as
    Prometheus's histogram_quantile does)."""
    bounds = sorted(cumulative)
    total = cumulative[bounds[-1]] if bounds else 0.0
    if total <= 0:
        return float("nan")
    rank, lower, below = q * total, 0.0, 0.0
    for bound in bounds:
        count = cumulative[bound]
        if count >= rank:
            if bound == float("inf"):
                return lower * 1000
            share = (rank - below) / (count - below) if count > below else 1.0
            return (lower + (bound - lower) * share) * 1000
        lower, below = bound, count
    return lower * 1000


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def throughput(base: str, paths: list[str], seconds: int, connections: int) -> WrkResult:
    if shutil.which("wrk"):
        wrk(base, paths, seconds=2, connections=connections)  # warm-up
        return wrk(base, paths, seconds=seconds, connections=connections)
    asyncio.run(closed_loop(base, paths, 2, connections))
    tally = asyncio.run(closed_loop(base, paths, seconds, connections))
    latencies = tally.admitted_ms + tally.shed_ms
    return WrkResult(
        requests_per_second=(tally.total - tally.errors) / seconds,
        p50_ms=percentile(latencies, 0.50),
        p99_ms=percentile(latencies, 0.99),
        non_2xx_3xx=sum(n for s, n in tally.statuses.items() if not 200 <= s < 400),
        errors=tally.errors,
    )


def unscored_share(base: str) -> str:
    """From the gateway's own /metrics: clicks served without the store (a starved machine makes
    the 250 ms store timeout trip, then the breaker skips the store for a second); they are
    cheaper than scored ones, so the figure says how many there were."""
    import urllib.request

    with urllib.request.urlopen(base + "/metrics", timeout=10) as response:
        text = response.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(("refgate_clicks_total{", "refgate_clicks_unscored_total ")):
            name = line.split("{", 1)[0].split(" ", 1)[0]
            values[name] = values.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    clicks = values.get("refgate_clicks_total", 0.0)
    unscored = values.get("refgate_clicks_unscored_total", 0.0)
    return f"  unscored {unscored:.0f} of {clicks:.0f} clicks"


# -- metrics cost ----------------------------------------------------------------------------


def metrics_cost(iterations: int = 20000) -> float:
    """Microseconds per click spent on metrics (a labelled counter and the latency histogram),
    in multiprocess mode as under gunicorn."""
    from gateway.metrics import Metrics

    metrics = Metrics()
    assert metrics.multiprocess, "PROMETHEUS_MULTIPROC_DIR should be set by now"
    platforms = ["browser", "wechat", "ios_safari", "qq"]
    started = time.perf_counter()
    for n in range(iterations):
        metrics.click("allow", platforms[n & 3], "redirect")
        metrics.latency.observe(0.002)
    return (time.perf_counter() - started) / iterations * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=10, help="per throughput run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--links", type=int, default=2000)
    parser.add_argument(
        "--saturation",
        type=float,
        default=0.0,
        help="req/s the surge's multiples are of, skipping the throughput rounds (for comparing "
        "admission settings on one scale); by default measured in this run",
    )
    parser.add_argument("--surge", default="0.5,1,2,3,4,2,1,0.5", help="multiples of saturation")
    parser.add_argument("--phase-seconds", type=float, default=6.0)
    parser.add_argument("--surge-connections", type=int, default=512)
    parser.add_argument("--probe", type=float, default=100.0, help="probe requests/s")
    parser.add_argument(
        "--probe-nice",
        type=int,
        default=0,
        choices=range(-20, 1),
        metavar="-20..0",
        help="run the surge probe at this niceness (below 0 needs root), as a client elsewhere",
    )
    parser.add_argument("--iterations", type=int, default=2000, help="in-process clicks")
    parser.add_argument(
        "--layout",
        choices=("shared", "store-apart"),
        default="shared",
        help="shared: Redis, gunicorn and the load generators on every core; store-apart: Redis "
        "pinned to the last core and everything else to the others (a store on a machine of "
        "its own, as in production)",
    )
    args = parser.parse_args()
    if args.probe_nice < 0 and os.geteuid() != 0:
        parser.error("--probe-nice below 0 needs root (raising a priority is privileged)")
    multipliers = [float(m) for m in args.surge.split(",") if m.strip()]

    metrics_dir = tempfile.mkdtemp(prefix="refgate-bench-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir  # as `refgate serve` sets it
    settings = Settings.from_env({**os.environ, "REFGATE_DATA_DIR": metrics_dir})
    threads = worker_threads(settings.max_in_flight)
    tool = "wrk" if shutil.which("wrk") else "python closed-loop generator"
    print(
        f"{os.cpu_count()} CPUs, {loadavg()} at start; gunicorn {WORKER}, {args.workers} workers "
        f"x {threads} threads; throughput by {tool}, {args.connections} connections",
        flush=True,
    )
    try:
        with environment() as env:
            paths = seed(env, links=args.links)
            if args.layout == "store-apart":
                cpus = os.sched_getaffinity(0)
                if len(cpus) < 2:
                    parser.error("--layout store-apart needs two cores or more")
                pin_store(env.redis_url, {max(cpus)})
                # This process, the probe in it, and every gunicorn and wrk it starts.
                os.sched_setaffinity(0, cpus - {max(cpus)})
                print(f"layout store-apart: Redis on CPU {max(cpus)}, the rest on "
                      f"{sorted(cpus - {max(cpus)})}", flush=True)  # fmt: skip
            results: dict[str, list[WrkResult]] = {"bare": [], "gateway": []}
            # Capacity: admission control relaxed (every thread admits, no queue limit), so the
            # figure is what the click path serves, not how fast it sheds.
            capacity_env = {
                **env.env(),
                "REFGATE_MAX_IN_FLIGHT": str(threads),
                "REFGATE_MAX_QUEUE_MS": "60000",
                "REFGATE_DOOR_QUEUE": "0",
            }
            for round_number in range(0 if args.saturation else args.rounds):
                for name, spec in (("bare", BARE), ("gateway", GATEWAY)):
                    with gunicorn(spec, capacity_env, args.workers, WORKER, threads) as base:
                        result = throughput(base, paths, args.seconds, args.connections)
                        unscored = unscored_share(base) if name == "gateway" else ""
                    results[name].append(result)
                    print(
                        f"round {round_number + 1} {name:8s} {result.requests_per_second:8.0f} "
                        f"req/s  p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:7.2f} ms  "
                        f"non-2xx/3xx {result.non_2xx_3xx}  errors {result.errors}  {loadavg()}"
                        f"{unscored}",
                        flush=True,
                    )
            if args.saturation:
                scored = args.saturation
            else:
                bare = median([r.requests_per_second for r in results["bare"]])
                scored = median([r.requests_per_second for r in results["gateway"]])
                print(f"\nbare Flask 302       {bare:8.0f} req/s (median of {args.rounds})")
                print(f"scored click path    {scored:8.0f} req/s (median of {args.rounds})")
                print(f"ratio scored/bare    {scored / bare:8.2f}  (goal >= 0.70)\n", flush=True)

            use_wrk = shutil.which("wrk") is not None
            print(
                f"surge from {scored:.0f} req/s saturation, {args.phase_seconds:g} s per phase; "
                + (
                    f"load by wrk (paced connections), latency of admitted requests from a "
                    f"{args.probe:g} req/s open-loop probe beside it"
                    + (f" (at nice {args.probe_nice})" if args.probe_nice else "")
                    if use_wrk
                    else f"Python open-loop generator, up to {args.surge_connections} connections"
                )
            )
            print(
                f"{'phase':>6s} {'offered':>8s} {'answered':>8s} {'served':>7s} {'shed503':>7s} "
                f"{'429':>5s} {'failed':>6s} {'adm p50':>8s} {'adm p99':>8s} {'shed p99':>8s} "
                f"{'all p99':>8s} {'srv p50':>8s} {'srv p99':>8s}  load"
            )
            with gunicorn(GATEWAY, env.env(), args.workers, WORKER, threads) as base:
                asyncio.run(open_loop(base, paths, scored * 0.3, 2, args.surge_connections))
                if args.probe_nice:
                    # The probe stands for clients on other machines: raised, its own waits
                    # for a core on this shared box stop counting (the servers keep theirs).
                    os.setpriority(os.PRIO_PROCESS, 0, args.probe_nice)
                for multiple in multipliers:
                    rate = scored * multiple
                    before = click_histogram(base)
                    if use_wrk:
                        tally, probe = surge_phase(
                            base, paths, rate, args.phase_seconds, args.probe
                        )
                        all_p99 = tally.all_p99
                    else:
                        tally = probe = asyncio.run(
                            open_loop(base, paths, rate, args.phase_seconds, args.surge_connections)
                        )
                        all_p99 = percentile(tally.admitted_ms + tally.shed_ms, 0.99)
                    shed = tally.statuses.get(503, 0)
                    limited = tally.statuses.get(429, 0)
                    failed = tally.errors + sum(
                        n for s, n in tally.statuses.items() if s >= 500 and s != 503
                    )
                    served = sum(n for s, n in tally.statuses.items() if s < 500 and s != 429)
                    server = histogram_delta(before, click_histogram(base))
                    print(
                        f"{multiple:5.1f}x {rate:8.0f} {tally.total:8d} {served:7d} {shed:7d} "
                        f"{limited:5d} {failed:6d} {percentile(probe.admitted_ms, 0.5):8.1f} "
                        f"{percentile(probe.admitted_ms, 0.99):8.1f} "
                        f"{percentile(probe.shed_ms, 0.99):8.1f} {all_p99:8.1f} "
                        f"{histogram_quantile(server, 0.5):8.1f} "
                        f"{histogram_quantile(server, 0.99):8.1f}  {loadavg()}",
                        flush=True,
                    )
            print(
                "(latencies in ms; served = answered without shedding: 302 and pages; "
                "failed = 5xx other than 503, socket errors and timeouts; adm = admitted "
                "requests of the probe, as a client sees them, its own waits for a core "
                "included; srv = admitted clicks in the server, from the worker taking the "
                "connection to the answer, from refgate_click_seconds)\n"
            )

            from bench.click_path import in_process_cost

            cost = in_process_cost(args.iterations)
            per_click = metrics_cost()
            print(f"metrics per click      {per_click:6.2f} us (counter + histogram, multiprocess)")
            print(
                f"click handler          {cost['handler_us']:6.1f} us wall, "
                f"{cost['handler_cpu_us']:.1f} us CPU in process; metrics = "
                f"{per_click / cost['handler_cpu_us'] * 100:.1f}% of its CPU  {loadavg()}"
            )
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
