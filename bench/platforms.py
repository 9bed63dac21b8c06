"""Cost of gateway.platforms.detect: cold (a user agent not seen before) and cached.

Classifies the in-app fixtures, the uap-core in-app subset and uap-core's system browser cases,
each cold (every cache cleared first; the first pass of the process apart) and then warm, and
prints microseconds per call with the ratio to ua-parser's own parse of the same strings measured
in the same run (the part of a cold call that is the library's) and, for comparison, the cost of
ua-parser's pure-Python resolver.

    .venv/bin/python bench/platforms.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from detectors import crawlers  # noqa: E402
from gateway.platforms import detect, detect_cached  # noqa: E402

BROWSER_FAMILIES = {"Mobile Safari", "Chrome Mobile", "Chrome", "Firefox", "Safari", "Edge"}


def user_agents() -> list[str]:
    uas: list[str] = []
    for path in (
        ROOT / "tests/fixtures/inapp_user_agents.tsv",
        ROOT / "tests/corpora/uap-core-ua-tests/inapp_webview_subset.tsv",
    ):
        with path.open(encoding="utf-8", newline="") as handle:
            rows = csv.DictReader(
                (line for line in handle if not line.startswith("#")),
                delimiter="\t",
                quoting=csv.QUOTE_NONE,
            )
            uas.extend(row["user_agent"] for row in rows)
    cases = yaml.safe_load(
        (ROOT / "tests/corpora/uap-core-ua-tests/test_ua.yaml").read_text(encoding="utf-8")
    )["test_cases"]
    uas.extend(c["user_agent_string"] for c in cases if c["family"] in BROWSER_FAMILIES)
    return list(dict.fromkeys(uas))


def cold(call: Callable[[str], object], uas: list[str], clear: Callable[[], None]) -> list[float]:
    """Microseconds of each call with every cache cleared before it."""
    costs = []
    for ua in uas:
        clear()
        started = time.perf_counter_ns()
        call(ua)
        costs.append((time.perf_counter_ns() - started) / 1000)
    return costs


def clear_all() -> None:
    detect_cached.cache_clear()
    crawlers._is_crawler_cached.cache_clear()
    crawlers._is_link_preview_cached.cache_clear()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    from ua_parser import BasicResolver, Domain, load_builtins, load_lazy_builtins
    from ua_parser.re2 import Resolver

    domains = Domain.USER_AGENT | Domain.OS
    re2_parser = Resolver(load_lazy_builtins())
    basic_parser = BasicResolver(load_builtins())

    uas = user_agents()
    for ua in uas:  # compile ua-parser's lazily compiled extraction regexes once
        re2_parser(ua, domains)
        basic_parser(ua, domains)
    # The first pass in a fresh process also pays for RE2 building its automata's states as
    # it meets new input (the crawler list's above all), once per worker.
    first_pass = cold(detect, uas, clear_all)
    detect_cold: list[float] = []
    parse_cold: list[float] = []
    basic_cold: list[float] = []
    for _ in range(args.rounds):
        detect_cold += cold(detect, uas, clear_all)
        parse_cold += cold(lambda ua: re2_parser(ua, domains), uas, lambda: None)
        basic_cold += cold(lambda ua: basic_parser(ua, domains), uas, lambda: None)

    for ua in uas:
        detect(ua)
    started = time.perf_counter_ns()
    for _ in range(args.rounds):
        for ua in uas:
            detect(ua)
    warm = (time.perf_counter_ns() - started) / 1000 / (args.rounds * len(uas))

    def summary(costs: list[float]) -> str:
        quantiles = statistics.quantiles(costs, n=100)
        return f"median {statistics.median(costs):6.1f} us  p99 {quantiles[98]:6.1f} us"

    median_detect = statistics.median(detect_cold)
    median_parse = statistics.median(parse_cold)
    print(f"{len(uas)} distinct user agents (in-app fixtures and corpus, system browsers)")
    print(f"detect, first pass:        {summary(first_pass)}  (fresh process)")
    print(f"detect, cold:              {summary(detect_cold)}")
    print(f"  ua-parser RE2, same UAs: {summary(parse_cold)}  (baseline)")
    print(f"  ratio detect / ua-parser: {median_detect / median_parse:.2f}")
    print(f"  ua-parser pure Python:   {summary(basic_cold)}  (not used)")
    print(f"detect, cached:            {warm:6.2f} us per call")
    print(f"cold budget 100 us: {'met' if median_detect < 100 else 'MISSED'} (median)")


if __name__ == "__main__":
    main()
