"""Referral tree benchmark: join ingest, memory, subtree and ancestor queries at a million joins.

Runs against a private redis-server it starts on a free port (nothing else is ever flushed) and
stops at the end. The tree is grown by preferential attachment (a new participant joins under a
random earlier participant or under that one's parent, so a few sharers reach very many people
and depth grows slowly, as referral trees do) from ``--roots`` seed sharers.

- **End-to-end joins**: the first ``--e2e`` participants join through the real code: the click is
  recorded by the click path's recorder (``click.lua``), then ``ConversionService.convert`` does
  what ``POST /api/v1/conversions`` does (click lookup, the new sharer's number, ``convert.lua``).
- **Bulk joins**: the rest run the same ``mint.lua`` and ``convert.lua`` with the keys and
  arguments ``ConversionService`` builds, pipelined ``--batch`` at a time (how a backfill would
  load a tree), without click records.
- **Memory**: ``used_memory`` growth over the bulk joins per participant: everything a join keeps
  (node, children index, reward, ledger, conversion and outbox stream entries, referrer number,
  the sharer's device sets).
- **Queries**: ``TreeService.subtree`` (depth 2, 50 children a node) and ``ancestors`` at the
  top (the largest subtrees), the middle (median depth, with children) and the leaves (deepest).
- **Baselines**, measured in the same run: one pipelined ``HSET`` of the node's four fields per
  participant and a pipelined no-op ``EVALSHA``; one ``HGETALL`` round trip for queries.

    .venv/bin/python bench/tree.py                        # 20,000 participants, ~1 minute
    .venv/bin/python bench/tree.py --participants 1000000 # the full run
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis

from bench.common import SECRET, free_port, wait_for_redis
from gateway.clickcall import device_key
from gateway.conversions import creditable
from gateway.events import ClickEvent
from gateway.flags import flag_id_for, stake_flag_ids
from gateway.store import keys
from gateway.store.scripts import script

NOOP = "-- a no-op script: the baseline cost of one EVALSHA\nreturn 1"


@contextmanager
def private_redis() -> Iterator[str]:
    """A redis-server of our own on a free port, no persistence; stopped (by pid) at the end."""
    executable = shutil.which("redis-server")
    if executable is None:
        from gateway.store.embedded import redis_server_executable

        executable = redis_server_executable()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="refgate-bench-tree-") as tmp:
        process = subprocess.Popen(
            [
                executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", tmp, "--logfile", f"{tmp}/redis.log",
            ]
        )  # fmt: skip
        url = f"redis://127.0.0.1:{port}/0"
        wait_for_redis(url, process, 10, "the private redis-server")
        try:
            yield url
        finally:
            process.terminate()
            process.wait(timeout=30)


def grow_tree(participants: int, roots: int, rng: random.Random) -> list[tuple[str, str]]:
    """(user, parent) in join order; roots are sharers the campaign started with."""
    parents: list[str] = [f"r{n}" for n in range(roots)]
    parent_of: dict[str, str] = {}
    joins = []
    for n in range(participants):
        user = f"u{n}"
        pick = parents[rng.randrange(len(parents))]
        if rng.random() < 0.5 and pick in parent_of:
            pick = parent_of[pick]  # preferential attachment: the busy sharers get busier
        parent_of[user] = pick
        parents.append(user)
        joins.append((user, pick))
    return joins


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def used_memory(client: Any) -> int:
    return int(client.info("memory")["used_memory"])


def timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


class Bench:
    def __init__(self, url: str, args: argparse.Namespace) -> None:
        os.environ.update({"REDIS_URL": url, "REFGATE_SECRET_KEYS": SECRET, "OMP_NUM_THREADS": "1"})
        from gateway import create_app

        self.data_dir = tempfile.mkdtemp(prefix="refgate-bench-tree-data-")
        self.app = create_app({"TESTING": True, "REFGATE_DATA_DIR": self.data_dir})
        self.services = self.app.extensions["refgate"]
        self.redis = self.services.store.main
        self.args = args
        self.rng = random.Random(args.seed)
        self.campaign = self.services.campaigns.create(
            {
                "slug": "tree",
                "name": "Tree bench",
                "destination_url": "https://shop.example.com/landing",
                "reward": {"amount": 1, "budget_total": 10**15},
            },
            actor="bench",
        )
        self.ck = keys.campaign_keys(self.campaign.id)
        self.paths: dict[str, str] = {}  # participant -> path, as the tree stores it

    def close(self) -> None:
        self.services.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    # -- joins ---------------------------------------------------------------------------------

    def end_to_end(self, joins: list[tuple[str, str]]) -> tuple[float, float]:
        """Seconds recording the clicks and seconds converting, through the real services."""
        services, campaign = self.services, self.campaign
        referrers = {parent for _, parent in joins}
        for parent in referrers:
            services.links.mint(campaign, parent)
        numbers = {
            name.decode(): int(number)
            for name, number in self.redis.hgetall(self.ck.referrer_index).items()
        }
        now = time.time()
        events = [
            ClickEvent(
                id=f"{campaign.id:x}.{secrets.token_urlsafe(12)}",
                ts=now - 120,
                campaign_id=campaign.id,
                campaign=campaign.slug,
                referrer_id=numbers[parent],
                visitor_id=secrets.token_hex(8),
                ip_hash=secrets.token_hex(10),
                prefix=f"203.0.{self.rng.randrange(256)}.0/24",
                ua="Mozilla/5.0 (iPhone) Safari",
                accept_language="zh-CN",
                referer="",
                scan=False,
                outcome="redirect",
                decision="allow",
                score=0.0,
            )
            for _, parent in joins
        ]
        chunks = [events[i : i + 100] for i in range(0, len(events), 100)]
        record = timed(lambda: [services.recorder.write(chunk) for chunk in chunks])

        def convert() -> None:
            for (user, parent), event in zip(joins, events, strict=True):
                outcome = services.conversions.convert(event.id, user)
                assert outcome.new and outcome.answer["parent"] == parent, outcome.answer
                self.paths[user] = self._path_of(user, parent)

        return record, timed(convert)

    def _path_of(self, user: str, parent: str) -> str:
        above = self.paths.get(parent, "")
        return f"{above}/{parent}" if above else parent

    def bulk(self, joins: list[tuple[str, str]], batch: int) -> float:
        """Seconds for the joins through mint.lua and convert.lua, pipelined."""
        mint, convert = script("mint"), script("convert")
        self.redis.script_load(mint.source)
        self.redis.script_load(convert.source)
        ck, campaign = self.ck, self.campaign
        reward = campaign.reward
        assert reward is not None
        started = time.perf_counter()
        for start in range(0, len(joins), batch):
            chunk = joins[start : start + batch]
            pipe = self.redis.pipeline(transaction=False)
            for user, _ in chunk:  # the new participant's own sharer number (convert does this)
                mint.queue(pipe, [ck.referrer_index, ck.referrer_external,
                                  ck.referrer_generation, ck.counters], [user])  # fmt: skip
            numbered = pipe.execute()
            numbers = [int(number) for number, _, _ in numbered]
            pipe = self.redis.pipeline(transaction=False)
            # The people index, as gateway.sharelinks.referrer_number adds a name new here.
            for (user, _), (_, _, new) in zip(chunk, numbered, strict=True):
                if new:
                    pipe.sadd(keys.person_campaigns(user), campaign.id)
            now = time.time()
            for (user, parent), number in zip(chunk, numbers, strict=True):
                parent_path = self.paths.get(parent, "")
                ancestors = [a for a in parent_path.split("/") if a]
                click_id = f"{campaign.id:x}.{secrets.token_urlsafe(12)}"
                event = {"outcome": "redirect", "decision": "allow", "ts": now - 120}
                convert.queue(
                    pipe,
                    [
                        ck.idempotency, ck.participant(user), ck.participant(parent),
                        ck.children(parent), ck.budget, ck.referrer_rewards(parent),
                        ck.daily_spend, ck.reward(user), ck.rewards,
                        ck.referrer_reward_index(parent), ck.ledger, ck.conversions, ck.counters,
                        ck.flag(flag_id_for(campaign.id, "click", click_id)),
                        ck.flag(flag_id_for(campaign.id, "referrer", parent)),
                        ck.top_sharers, ck.outbox, ck.sharer_own(number),
                        ck.flags_stake, ck.flags_stake_open,
                        ck.cluster_index, ck.click_conversions,
                        *ck.reward_status_indexes(parent),
                        *(ck.participant(a) for a in ancestors),
                    ],
                    [
                        user, parent, parent_path, click_id, "", repr(now), reward.amount,
                        reward.budget_total, reward.max_per_referrer or 0,
                        reward.max_per_day or 0, int(now) // 86400, creditable(event, now),
                        secrets.token_hex(8),
                        device_key(secrets.token_hex(10), "Mozilla/5.0 (iPhone) Safari"),
                        f"203.0.{self.rng.randrange(256)}.0/24", number,
                        *stake_flag_ids(campaign.id, user, parent, click_id),
                    ],
                )  # fmt: skip
                self.paths[user] = self._path_of(user, parent)
            for reply in pipe.execute():
                if isinstance(reply, list):  # convert.lua's, not an index's SADD
                    assert reply[0] == 1, reply[1]
        return time.perf_counter() - started

    # -- baselines -----------------------------------------------------------------------------

    def baselines(self, count: int, batch: int) -> tuple[float, float, int]:
        """Seconds for ``count`` pipelined HSETs and no-op EVALSHAs (in database 1, flushed
        after), and the HSETs' memory growth."""
        client = redis.Redis.from_url(self.services.store.url.rsplit("/", 1)[0] + "/1")
        sha = client.script_load(NOOP)
        before = used_memory(client)
        started = time.perf_counter()
        now = time.time()
        for start in range(0, count, batch):
            pipe = client.pipeline(transaction=False)
            for n in range(start, min(start + batch, count)):
                pipe.hset(f"b:{{c1}}:p:u{n}", mapping={"parent": f"u{n // 3}", "depth": 7,
                          "path": "u1/u4/u13/u40/u121/u364", "joined": repr(now)})  # fmt: skip
            pipe.execute()
        hset = time.perf_counter() - started
        memory = used_memory(client) - before
        started = time.perf_counter()
        for start in range(0, count, batch):
            pipe = client.pipeline(transaction=False)
            for n in range(start, min(start + batch, count)):
                pipe.execute_command("EVALSHA", sha, 1, f"b:{{c1}}:p:u{n}", "x")
            pipe.execute()
        noop = time.perf_counter() - started
        client.flushdb()
        client.close()
        return hset, noop, memory

    # -- where the bytes go -----------------------------------------------------------------------

    def breakdown(self, users: list[str], parents: set[str], total: int) -> dict[str, float]:
        """Bytes per participant by kind of key, from MEMORY USAGE (samples for the per-user
        keys, whole keys for the shared ones)."""
        ck, r = self.ck, self.redis

        def usage(key: str) -> int:
            return int(r.memory_usage(key, samples=0) or 0)

        sample = self.rng.sample(users, min(300, len(users)))
        numbers = [int(n) for n in r.hmget(ck.referrer_index, sample)]
        out: dict[str, float] = {
            "node (p:<user>)": sum(usage(ck.participant(u)) for u in sample) / len(sample),
            "reward (reward:<user>)": sum(usage(ck.reward(u)) for u in sample) / len(sample),
            "own set (browser, phone, network)": sum(usage(ck.sharer_own(n)) for n in numbers)
            / len(sample),
            "people index (person:<user>)": sum(usage(keys.person_campaigns(u)) for u in sample)
            / len(sample),
        }
        sharers = self.rng.sample(sorted(parents), min(300, len(parents)))
        per_sharer = sum(
            usage(ck.children(u)) + usage(ck.referrer_rewards(u))
            + usage(ck.referrer_reward_index(u))
            for u in sharers
        ) / len(sharers)  # fmt: skip
        out["sharer indexes (children, rref, rewards-by)"] = per_sharer * len(parents) / total
        by_status = sum(
            usage(ck.referrer_rewards_by_status(u, status))
            for u in sharers
            for status in keys.REWARD_STATUSES
        ) / len(sharers)  # fmt: skip
        out["rewards by status (campaign's and sharers')"] = (
            by_status * len(parents)
            + sum(usage(ck.rewards_by_status(status)) for status in keys.REWARD_STATUSES)
        ) / total
        for name, key in (
            ("ledger stream", ck.ledger),
            ("conversions stream", ck.conversions),
            ("outbox stream (webhooks)", ck.outbox),
            ("rewards sorted set", ck.rewards),
            ("click conversions (click flags' rewards)", ck.click_conversions),
        ):
            out[name] = usage(key) / total
        numbers_total = sum(
            usage(k) for k in (ck.referrer_index, ck.referrer_external, ck.referrer_generation)
        )
        out["sharer numbers (index, external, generation)"] = numbers_total / total
        return out

    # -- queries -------------------------------------------------------------------------------

    def query(self, nodes: list[str], rounds: int) -> dict[str, tuple[float, float]]:
        tree, campaign = self.services.tree, self.campaign
        subtree, ancestors = [], []
        for n in range(rounds):
            node = nodes[n % len(nodes)]
            started = time.perf_counter()
            tree.subtree(campaign, node, depth=2, limit=50)
            subtree.append(time.perf_counter() - started)
            started = time.perf_counter()
            tree.ancestors(campaign, node)
            ancestors.append(time.perf_counter() - started)
        return {
            "subtree": (percentile(subtree, 0.5) * 1e3, percentile(subtree, 0.99) * 1e3),
            "ancestors": (percentile(ancestors, 0.5) * 1e3, percentile(ancestors, 0.99) * 1e3),
        }

    def roundtrip(self, nodes: list[str], rounds: int) -> tuple[float, float]:
        times = []
        for n in range(rounds):
            started = time.perf_counter()
            self.redis.hgetall(self.ck.participant(nodes[n % len(nodes)]))
            times.append(time.perf_counter() - started)
        return percentile(times, 0.5) * 1e3, percentile(times, 0.99) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", type=int, default=20_000)
    parser.add_argument("--roots", type=int, default=0, help="default: participants / 2000")
    parser.add_argument("--e2e", type=int, default=2_000, help="joins through ConversionService")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--queries", type=int, default=500, help="per kind of node")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--hash-max-listpack-value",
        type=int,
        default=0,
        help="set this Redis option first (default: the server's, 64): a node hash leaves the "
        "compact encoding when one of its values is longer (a deep node's path)",
    )
    args = parser.parse_args()
    if args.participants < 100 or args.batch < 1 or args.queries < 10:
        parser.error("--participants at least 100, --batch at least 1, --queries at least 10")
    roots = args.roots or max(args.participants // 2000, 5)
    e2e = min(args.e2e, args.participants // 2)

    joins = grow_tree(args.participants, roots, random.Random(args.seed))
    with private_redis() as url:
        if args.hash_max_listpack_value:
            option = ("hash-max-listpack-value", str(args.hash_max_listpack_value))
            redis.Redis.from_url(url).config_set(*option)
        bench = Bench(url, args)
        try:
            run(bench, joins, e2e, args)
        finally:
            bench.close()


def run(bench: Bench, joins: list[tuple[str, str]], e2e: int, args: argparse.Namespace) -> None:
    n = len(joins)
    roots = sorted({parent for _, parent in joins if parent.startswith("r")})
    print(f"referral tree: {n:,} participants under {len(roots)} seed sharers, "
          f"{e2e:,} joined end to end, the rest in pipelines of {args.batch}")  # fmt: skip
    record_s, convert_s = bench.end_to_end(joins[:e2e])
    bench.redis.execute_command("MEMORY", "PURGE")
    progress = time.perf_counter()
    bulk_s = hset_s = noop_s = 0.0
    grown = base_count = 0
    hset_memory = -1
    step = 100_000
    for start in range(e2e, n, step):
        chunk = joins[start : start + step]
        before = used_memory(bench.redis)
        bulk_s += bench.bulk(chunk, args.batch)
        grown += used_memory(bench.redis) - before
        # The baselines after every chunk (a fifth of its size), so drift on a shared machine
        # touches both sides of the ratios alike.
        count = max(len(chunk) // 5, 1000)
        hset, noop, memory = bench.baselines(count, args.batch)
        hset_s, noop_s, base_count = hset_s + hset, noop_s + noop, base_count + count
        if hset_memory < 0:
            hset_memory = memory * 1000 // count
        if n > 200_000:
            print(f"  {start + len(chunk):,} joined "
                  f"({time.perf_counter() - progress:.0f} s)", file=sys.stderr)  # fmt: skip
    hset_rate, noop_rate = base_count / hset_s, base_count / noop_s
    after = used_memory(bench.redis)
    bulk_n = n - e2e
    bulk_rate = bulk_n / bulk_s
    per_participant = grown / bulk_n

    # Sanity: a bulk node looks like an end-to-end node, and the tree's counts add up.
    e2e_fields = set(bench.redis.hkeys(bench.ck.participant(joins[0][0])))
    bulk_fields = set(bench.redis.hkeys(bench.ck.participant(joins[-1][0])))
    assert e2e_fields == bulk_fields, (e2e_fields, bulk_fields)
    stats = bench.services.tree.stats(bench.campaign)
    assert stats["conversions"] == n, stats

    depth_of = {user: bench.paths[user].count("/") + 1 for user, _ in joins}
    has_children = {parent for _, parent in joins}
    sizes = bench.redis.pipeline(transaction=False)
    for root in roots:
        sizes.hget(bench.ck.participant(root), "size")
    top = [
        r
        for _, r in sorted(zip((int(s) for s in sizes.execute()), roots, strict=True), reverse=True)
    ][:5]
    depths = sorted(depth_of.values())
    median_depth = depths[len(depths) // 2]
    middle = [u for u, d in depth_of.items() if d == median_depth and u in has_children][:200]
    deepest = sorted(depth_of, key=lambda u: -depth_of[u])
    leaves = [u for u in deepest if u not in has_children][:200]
    rt50, rt99 = bench.roundtrip(leaves, args.queries)
    results = {
        "top": bench.query(top, args.queries),
        "middle": bench.query(middle, args.queries),
        "leaves": bench.query(leaves, args.queries),
    }

    print(f"tree: max depth {stats['max_depth']}, median depth {median_depth}, "
          f"branching {stats['branching']}, largest subtree "
          f"{bench.services.tree.node(bench.campaign, top[0])['subtree_size']:,}")  # fmt: skip
    print()
    print("joins")
    e2e_rate = e2e / (record_s + convert_s)
    print(f"  end to end (record click + ConversionService.convert): {e2e_rate:8,.0f}/s"
          f"  (convert alone {e2e / convert_s:,.0f}/s)")  # fmt: skip
    print(f"  bulk (mint.lua + convert.lua, pipelined):              {bulk_rate:8,.0f}/s")
    print(f"  baseline: bare HSET pipelined                           {hset_rate:8,.0f}/s"
          f"  -> bulk join / HSET = {bulk_rate / hset_rate:.3f}")  # fmt: skip
    print(f"  baseline: no-op EVALSHA pipelined                       {noop_rate:8,.0f}/s"
          f"  -> bulk join / no-op script = {bulk_rate / noop_rate:.3f}")  # fmt: skip
    print()
    print("memory")
    print(f"  per participant (bulk joins):  {per_participant:,.0f} bytes"
          f"  ({grown / 2**20:,.0f} MiB for {bulk_n:,})")  # fmt: skip
    print(f"  total used_memory:             {after / 2**20:,.0f} MiB for {n:,} participants")
    base_pp = hset_memory / 1000
    print(f"  baseline: bare node HSET        {base_pp:,.0f} bytes"
          f"  -> ratio {per_participant / base_pp:.1f}")  # fmt: skip
    sample_node = bench.ck.participant(joins[-1][0])
    encoding = bench.redis.object("encoding", sample_node).decode()
    print(f"  where it goes (bytes per participant; a node hash is {encoding}-encoded):")
    for name, value in bench.breakdown([u for u, _ in joins[e2e:]], has_children, n).items():
        print(f"    {name:46s} {value:7,.0f}")
    print()
    print(f"queries (ms, p50 / p99, {args.queries} each; subtree depth 2, 50 children a node)")
    print(f"  baseline: one HGETALL round trip   {rt50:6.3f} / {rt99:6.3f}")
    for where, found in results.items():
        s50, s99 = found["subtree"]
        a50, a99 = found["ancestors"]
        print(f"  {where:7s} subtree {s50:7.3f} / {s99:7.3f} (x{s50 / rt50:5.1f})"
              f"   ancestors {a50:6.3f} / {a99:6.3f} (x{a50 / rt50:5.1f})")  # fmt: skip


if __name__ == "__main__":
    main()
