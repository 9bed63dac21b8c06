"""Benchmark of GET /s/<token>: the gateway under gunicorn against a bare Flask 302, same settings.

Runs the servers in turn (several rounds, so drift affects all), prints throughput, p50/p99
and the ratio gateway / bare, then the in-process cost of the click handler in microseconds.
A third app, the bare 302 plus one INCR sent as the click path sends its call, shows what one
store round trip per click costs on its own: no design that records clicks in Redis (and the
brief asks for one touch per click) can be faster than that floor.

Two layouts, each with its own baseline:

* ``shared``: gunicorn, wrk and the Redis server on all the machine's cores, competing (the
  store's CPU counts against the gateway: a one-box install);
* ``store-apart``: the Redis server pinned to the last core, gunicorn and wrk to the others (the
  store on a machine of its own, as in production, where the gateway tier scales by adding
  workers and Redis runs elsewhere). The bare app gets exactly the same cores.

    .venv/bin/python bench/click_path.py [--seconds 10] [--rounds 3] [--layouts shared,store-apart]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    BROWSER_UA,
    cpu_per_request,
    environment,
    gunicorn,
    median,
    pin_store,
    seed,
    store_pid,
    wrk,
)
from gateway.cli import default_workers


def in_process_cost(iterations: int) -> dict[str, float]:
    """Microseconds per click through ClickGateway.handle, with the real store round trip."""
    from werkzeug.test import EnvironBuilder

    from gateway import create_app

    app = create_app()
    services = app.extensions["refgate"]
    # The periodic jobs (flagger, tree watch) run in a thread of the served app; their work is
    # in the served figures above, but here it would be charged to whichever clicks it overlaps.
    services.scheduler.stop()
    campaign = services.campaigns.require("bench")
    token = services.links.mint(campaign, "alice").token
    environ = EnvironBuilder(
        path=f"/s/{token}",
        headers={"User-Agent": BROWSER_UA, "Accept-Language": "zh-CN,zh;q=0.9"},
        environ_base={"REMOTE_ADDR": "203.0.113.9"},
    ).get_environ()
    gateway = services.gateway
    tokens = [services.links.mint(campaign, f"inproc-{n}").token for n in range(200)]
    rng = random.Random(7)
    requests = []
    for n in range(iterations + 200):
        # A different person each time, on one of 200 links: the path a real click takes.
        request = dict(environ)
        request["REMOTE_ADDR"] = (
            f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{n % 250 + 1}"
        )
        requests.append((tokens[rng.randrange(len(tokens))], request))
    for token_, request in requests[:200]:  # warm caches
        gateway.handle(token_, request)
    started, cpu = time.perf_counter(), time.process_time()
    for token_, request in requests[200:]:
        answer = gateway.handle(token_, request)
    handler = (time.perf_counter() - started) / iterations * 1e6
    handler_cpu = (time.process_time() - cpu) / iterations * 1e6
    assert answer.status == 302, "the in-process clicks should be plain redirects"
    codec = services.codec
    started = time.perf_counter()
    for _ in range(iterations):
        codec._decode(token)  # uncached: the HMAC check itself
    verify = (time.perf_counter() - started) / iterations * 1e6
    services.close()
    return {"handler_us": handler, "handler_cpu_us": handler_cpu, "verify_us": verify}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    # refgate serve's default: sync workers block on the store round trip, so 2 per core.
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument(
        "--layouts",
        default="shared,store-apart",
        help="where the store runs: shared (all cores) and/or store-apart (a core of its own)",
    )
    parser.add_argument(
        "--links", type=int, default=2000, help="distinct share links requested in turn"
    )
    args = parser.parse_args()

    with environment() as env:
        paths = seed(env, links=args.links)
        all_cpus = os.sched_getaffinity(0)
        store = store_pid(env.redis_url)
        for layout in args.layouts.split(","):
            if layout == "store-apart":
                if len(all_cpus) < 2:
                    print("store-apart needs two cores or more; skipped")
                    continue
                store_cpu = max(all_cpus)
                serving: set[int] | None = all_cpus - {store_cpu}
                pin_store(env.redis_url, {store_cpu})
                where = f"Redis on CPU {store_cpu}, gunicorn and wrk on CPUs {sorted(serving)}"
            elif layout == "shared":
                serving = None
                pin_store(env.redis_url, all_cpus)
                where = f"gunicorn, wrk and Redis sharing CPUs {sorted(all_cpus)}"
            else:
                parser.error(f"unknown layout {layout!r}: shared or store-apart")
            print(f"-- layout {layout}: {where}", flush=True)
            apps = {
                "bare": "bench.bare_app:app",
                "bare+store": "bench.bare_app:store_app",
                "gateway": "gateway:create_app()",
            }
            results: dict[str, list] = {name: [] for name in apps}
            spent: dict[str, list[dict[str, float]]] = {name: [] for name in apps}
            for round_number in range(args.rounds):
                for name, spec in apps.items():
                    with gunicorn(spec, env.env(), args.workers, cpus=serving) as base:
                        wrk(base, paths, seconds=2, connections=args.connections, cpus=serving)
                        with cpu_per_request(store) as cpu:
                            result = wrk(
                                base,
                                paths,
                                seconds=args.seconds,
                                connections=args.connections,
                                cpus=serving,
                            )
                    results[name].append(result)
                    served = max(result.requests_per_second * args.seconds, 1.0)
                    spent[name].append({part: s / served * 1e6 for part, s in cpu.items()})
                    print(
                        f"round {round_number + 1} {name:10s} "
                        f"{result.requests_per_second:9.0f} req/s  "
                        f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  "
                        f"non-3xx {result.non_2xx_3xx}  socket errors {result.errors}  "
                        f"load {os.getloadavg()[0]:.2f}",
                        flush=True,
                    )
            bare = median([r.requests_per_second for r in results["bare"]])
            floor = median([r.requests_per_second for r in results["bare+store"]])
            gateway = median([r.requests_per_second for r in results["gateway"]])
            print(
                f"layout {layout}: gunicorn sync, {args.workers} workers, "
                f"{args.connections} connections, {args.links} links in turn, wrk on loopback"
            )
            print(f"  bare Flask 302      {bare:9.0f} req/s (median of {args.rounds})")
            print(f"  gateway GET /s/     {gateway:9.0f} req/s (median of {args.rounds})")
            print(f"  bare + one INCR     {floor:9.0f} req/s (median of {args.rounds})")
            print(f"  ratio gateway/bare  {gateway / bare:9.2f}  (goal >= 0.70)")
            print(
                f"  ratio (bare + one INCR)/bare {floor / bare:5.2f}: what one store round trip "
                f"per click costs on its own; gateway/(bare + one INCR) {gateway / floor:.2f}"
            )
            print("  CPU per request, us (median of rounds; machine: all processes and the kernel)")
            for name in apps:
                parts = {
                    part: median([round_[part] for round_ in spent[name]])
                    for part in ("gunicorn", "store", "jobs", "wrk", "machine")
                }
                print("    " + f"{name:11s}" + "  ".join(f"{p} {v:5.0f}" for p, v in parts.items()))
            # The same ratio from the CPU the benchmark's own processes spent a request: on a
            # saturated box it matches the throughput ratio, and unlike it, it does not move
            # when something else on the machine takes CPU in some rounds and not others.
            own = {
                name: median(
                    [sum(r[p] for p in ("gunicorn", "store", "jobs", "wrk")) for r in spent[name]]
                )
                for name in apps
            }
            print(
                f"  ratio from CPU a request (gunicorn + store + jobs + wrk): "
                f"{own['bare'] / own['gateway']:.2f}"
            )
            sys.stdout.flush()
        pin_store(env.redis_url, all_cpus)
        cost = in_process_cost(args.iterations)
        print(
            f"in-process click handler {cost['handler_us']:7.1f} us/click wall, "
            f"{cost['handler_cpu_us']:.1f} us CPU (one store round trip included)"
        )
        print(f"token verification       {cost['verify_us']:7.1f} us")


if __name__ == "__main__":
    main()
