"""Benchmark of ``refgate simulate``: events per second, against writing the same files' bytes.

Generates a run (default scale 7,500: about a million events) into a temporary directory and
prints events/s; then, as the baseline measured in the same run, serialises as many of the run's
own events and labels again with orjson and writes them out (the floor any generator pays for
its output), and prints the ratio simulate / baseline.

    .venv/bin/python bench/simulate.py [--scale 7500] [--seed 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.simulate import simulate

SAMPLE = 100_000


def baseline(out: Path, scratch: Path, total: int) -> float:
    """Seconds to serialise and write ``total`` events and labels of the run once more (the first
    100,000 of each, parsed beforehand and written as often as needed)."""
    with open(out / "clicks.jsonl", "rb") as handle:
        events = [orjson.loads(line) for line, _ in zip(handle, range(SAMPLE), strict=False)]
    with open(out / "labels.jsonl", "rb") as handle:
        labels = [orjson.loads(line) for line, _ in zip(handle, range(SAMPLE), strict=False)]
    pairs = list(zip(events, labels, strict=True))
    started = time.perf_counter()
    with open(scratch / "events", "wb") as ev, open(scratch / "labels", "wb") as lb:
        written = 0
        while written < total:
            for event, label in pairs[: total - written]:
                ev.write(orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE))
                lb.write(orjson.dumps(label, option=orjson.OPT_APPEND_NEWLINE))
            written += min(len(pairs), total - written)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=int, default=7500)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="refgate-sim-") as tmp:
        out, scratch = Path(tmp) / "run", Path(tmp) / "scratch"
        out.mkdir()
        scratch.mkdir()
        started = time.perf_counter()
        summary = simulate(out, scale=args.scale, seed=args.seed)
        elapsed = time.perf_counter() - started
        events = summary["events"]
        size = sum(f.stat().st_size for f in out.iterdir()) / 1e6
        floor = baseline(out, scratch, events)
    print(f"scale {args.scale}, seed {args.seed}: {events:,} events, {size:,.0f} MB written")
    print(f"simulate                 {events / elapsed:10,.0f} events/s ({elapsed:.1f} s)")
    print(f"baseline (dump + write)  {events / floor:10,.0f} events/s ({floor:.1f} s)")
    print(f"ratio simulate/baseline  {floor / elapsed:10.2f}")


if __name__ == "__main__":
    main()
