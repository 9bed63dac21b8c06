"""Console pages with a big campaign: a million participants and ten thousand flags.

Seeds (straight into the store, through the key names of gateway.store.keys, as the conversion
and flag scripts would leave them) a campaign whose referral tree has ``--participants``
participants under ``--roots`` first sharers, with ``--flags`` open flags, then times each console
page through the Flask test client (in process, no network) as a signed-in admin. Prints the
median per page in ms and its ratio to ``GET /healthz`` measured in the same run (the cheapest
request Flask serves: the baseline).

    .venv/bin/python bench/console.py [--participants 1000000] [--flags 10000] [--runs 15]

Uses a private embedded Redis in a temporary directory unless REDIS_URL is set (it is flushed).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import environment
from gateway.flags import FlagCandidate
from gateway.store import keys

CHUNK = 5000


def seed_tree(redis: object, campaign_id: int, participants: int, roots: int) -> str:
    """A tree: ``roots`` first sharers, each with children, grandchildren... (a fan-out of 20
    below the roots). Returns the biggest root's id."""
    ck = keys.campaign_keys(campaign_id)
    now = time.time()
    # Level by level: parents of level n+1 are the nodes of level n, 20 children each.
    level = [f"r{i}" for i in range(roots)]
    made = 0
    depth = 0
    pipe = redis.pipeline(transaction=False)  # type: ignore[attr-defined]
    sizes: dict[str, int] = {}
    parent_of: dict[str, str] = {}
    pending = 0

    def flush() -> None:
        nonlocal pending
        if pending:
            pipe.execute()
            pending = 0

    for root in level:
        pipe.hset(
            ck.participant(root),
            mapping={"parent": "", "depth": 0, "path": "", "joined": now, "root": 1},
        )
        pending += 1
    made = len(level)
    paths = dict.fromkeys(level, "")
    while made < participants:
        depth += 1
        following = []
        for parent in level:
            for n in range(20):
                if made >= participants:
                    break
                child = f"{parent}.{n}"
                path = f"{paths[parent]}/{parent}" if paths[parent] else parent
                paths[child] = path
                parent_of[child] = parent
                pipe.hset(
                    ck.participant(child),
                    mapping={
                        "parent": parent,
                        "depth": depth,
                        "path": path,
                        "joined": now + made,
                        "prefix": f"203.0.{made % 250}.0/24",
                        "device": f"d{made % 9973}",
                    },
                )
                pipe.zadd(ck.children(parent), {child: now + made})
                pending += 2
                following.append(child)
                made += 1
                if pending >= CHUNK:
                    flush()
            if made >= participants:
                break
        level = following
    flush()
    # Subtree sizes and heights, bottom up (what convert.lua keeps as participants join).
    heights: dict[str, int] = {}
    for child in sorted(parent_of, key=lambda c: -c.count(".")):
        parent = parent_of[child]
        sizes[parent] = sizes.get(parent, 0) + 1 + sizes.get(child, 0)
        heights[parent] = max(heights.get(parent, 0), heights.get(child, 0) + 1)
    for node, size in sizes.items():
        pipe.hset(ck.participant(node), mapping={"size": size, "height": heights[node]})
        pending += 1
        if pending >= CHUNK:
            flush()
    flush()
    counters = {"participants": participants, "roots": roots, "conversions": participants - roots}
    redis.hset(ck.counters, mapping=counters)  # type: ignore[attr-defined]
    redis.zadd(  # type: ignore[attr-defined]
        ck.top_sharers, {f"r{i}": sizes.get(f"r{i}", 0) for i in range(roots)}
    )
    return max((f"r{i}" for i in range(roots)), key=lambda r: sizes.get(r, 0))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--participants", type=int, default=1_000_000)
    parser.add_argument("--roots", type=int, default=50)
    parser.add_argument("--flags", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    with environment() as env:
        import os

        os.environ.update(
            {k: v for k, v in env.env().items() if k.startswith(("REFGATE_", "REDIS_"))}
        )
        from gateway import create_app

        app = create_app({"TESTING": True})
        services = app.extensions["refgate"]
        if not services.store.is_cluster:
            services.store.main.flushdb()
        campaign = services.campaigns.create(
            {
                "slug": "big",
                "name": "Big",
                "destination_url": "https://shop.example.com/",
                "reward": {"amount": 1, "budget_total": 10**9},
            },
            "bench",
        )
        started = time.perf_counter()
        top = seed_tree(services.store.main, campaign.id, args.participants, args.roots)
        print(f"seeded {args.participants:,} participants in {time.perf_counter() - started:.0f} s")
        started = time.perf_counter()
        services.flags.raise_listeners.clear()  # seeding only: no rewards to hold
        for n in range(args.flags):
            subject = f"{top}.{n % 20}" if n < 20 else f"x{n}"
            services.flags.raise_flag(
                campaign.id,
                "big",
                FlagCandidate("referrer", subject, (n * 7919 % 1000) / 1000, ("bench",)),
                time.time(),
            )
        print(f"raised {args.flags:,} flags in {time.perf_counter() - started:.0f} s")
        flag_id = services.flags.find([campaign.id], status="open", limit=1)[0][0].id

        services.users.add("bench@example.com", "admin", "bench password 123")
        client = app.test_client()
        page = client.get("/console/login")
        token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        client.post(
            "/console/login",
            data={
                "email": "bench@example.com",
                "password": "bench password 123",
                "csrf_token": token,
            },
        )
        pages = {
            "baseline GET /healthz": "/healthz",
            "campaign list": "/console/campaigns",
            "campaign page": "/console/campaigns/big",
            "review queue (open, by score)": "/console/flags",
            "review queue page 100": "/console/flags?page=100",
            "review queue by amount": "/console/flags?sort=amount",
            "review queue by amount, page 100": "/console/flags?sort=amount&page=100",
            "by amount, referrers scoring 0.5+": (
                "/console/flags?sort=amount&kind=referrer&min_score=0.5"
            ),
            "a flag": f"/console/flags/{flag_id}",
            "tree: top sharers": "/console/campaigns/big/tree",
            f"tree: {top} (20 children)": f"/console/campaigns/big/tree?node={top}",
            "tree: a leaf's parent page": f"/console/campaigns/big/tree?node={top}.0",
            f"a person's page ({top})": f"/console/campaigns/big/people/{top}",
            f"people search ({top})": f"/console/people?name={top}",
        }
        results = {}
        for label, path in pages.items():
            times = []
            for _ in range(args.runs):
                started = time.perf_counter()
                response = client.get(path)
                times.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (path, response.status_code)
            results[label] = statistics.median(times)
        base = results["baseline GET /healthz"]
        print(f"{'page':40} {'median ms':>10} {'x baseline':>11}")
        for label, ms in results.items():
            print(f"{label:40} {ms:10.1f} {ms / base:11.1f}")
        # Empty the store first: the embedded one saves on shutdown, a million keys take long.
        if not services.store.is_cluster:
            services.store.main.flushdb()
        services.close()


if __name__ == "__main__":
    main()
