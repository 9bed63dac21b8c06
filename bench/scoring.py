"""Benchmark of the scoring step (microseconds per click) and of replay (events per second).

Simulates a small labelled log, replays it once through the real gateway (the same code the
online click path runs) while recording every scoring call's inputs, trains a model on the log,
then times, on those recorded inputs:

- the baseline: verifying the click's signed token (itsdangerous), which every click pays;
- ``Engine.score`` with the rules only, and with the trained model;
- the model's ``predict`` alone.

Then replays the log again (with the model) and prints events per second against the baseline of
reading and parsing the same log, measured in the same run.

    .venv/bin/python bench/scoring.py [--scale 120] [--seed 5] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson

from detectors.base import ClickInput, History
from detectors.engine import Engine, Policy, Verdict
from detectors.features import features as feature_vector
from detectors.training import train
from gateway.links import LinkCodec, ShareLink
from gateway.replay import replay
from gateway.simulate import simulate
from gateway.training_data import from_simulation

Call = tuple[ClickInput, History, Policy]
DEFAULT_POLICY = Policy()


def record_scoring_inputs(log: Path, out: Path) -> tuple[list[Call], float]:
    """Replay ``log`` and keep what ``Engine.score`` was asked; returns them and events/s."""
    calls: list[Call] = []
    original = Engine.score

    def recording(
        self: Engine, click: ClickInput, history: History, policy: Policy = DEFAULT_POLICY
    ) -> Verdict:
        calls.append((click, history, policy))
        return original(self, click, history, policy)

    Engine.score = recording  # type: ignore[method-assign]
    try:
        summary = replay(log, out)
    finally:
        Engine.score = original  # type: ignore[method-assign]
    return calls, summary.events_per_second


def per_call_us(run: Any, items: list[Any], repeat: int) -> float:
    """Median over ``repeat`` passes of microseconds per item."""
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        for item in items:
            run(item)
        timings.append((time.perf_counter() - started) / len(items) * 1e6)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=int, default=120)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if args.scale < 1 or args.repeat < 1:
        parser.error("--scale and --repeat must be at least 1")

    with tempfile.TemporaryDirectory(prefix="refgate-bench-scoring-") as tmp:
        base = Path(tmp)
        simulation = base / "sim"
        simulation.mkdir()
        simulate(simulation, scale=args.scale, seed=args.seed)
        log = simulation / "clicks.jsonl"
        calls, _ = record_scoring_inputs(log, base / "replay-rules")
        if not calls:
            raise SystemExit("the simulated log produced no scored clicks")
        report = train(from_simulation(simulation), seed=args.seed)
        model = report.model

        codec = LinkCodec([b"bench-scoring-key-0123456789abcdef"])
        # Distinct tokens per pass: LinkCodec caches verified tokens (shared links are opened
        # many times), and the baseline is the HMAC check itself.
        now = int(time.time())
        passes = [
            [
                codec.encode(ShareLink(campaign_id=1 + p, referrer_id=n, issued_at=now))
                for n in range(len(calls))
            ]
            for p in range(args.repeat)
        ]
        rules = Engine()
        scored = Engine()
        scored.model = model
        features = [feature_vector(click, history) for click, history, _ in calls]

        verify_us = statistics.median(
            per_call_us(codec._decode, tokens, 1)  # the uncached check
            for tokens in passes
        )
        rules_us = per_call_us(lambda c: rules.score(*c), calls, args.repeat)
        model_us = per_call_us(lambda c: scored.score(*c), calls, args.repeat)
        predict_us = per_call_us(model.predict, features, args.repeat)

        started = time.perf_counter()
        with open(log, "rb") as fh:
            parsed = sum(1 for line in fh if line.strip() and orjson.loads(line))
        parse_eps = parsed / (time.perf_counter() - started)
        summary = replay(log, base / "replay-model", model_json=model.to_json())

    print(f"scored clicks {len(calls)} (simulation scale {args.scale}, seed {args.seed})")
    print(f"{'step':34s} {'us/click':>9s} {'x verify':>9s}")
    for name, value in (
        ("baseline: verify signed token", verify_us),
        ("engine.score, rules only", rules_us),
        (f"engine.score, rules + model {model.version}", model_us),
        ("model.predict alone", predict_us),
    ):
        print(f"{name:34s} {value:9.1f} {value / verify_us:9.2f}")
    print(
        f"replay {summary.events} events at {summary.events_per_second:,.0f} events/s; "
        f"baseline read+parse {parse_eps:,.0f} events/s; "
        f"ratio {summary.events_per_second / parse_eps:.4f}"
    )


if __name__ == "__main__":
    main()
