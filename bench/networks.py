"""Cost of detectors.networks: loading the datacenter/VPN lists, their memory, and lookups.

Loads the shipped lists (best of several loads), measures the memory the loaded tables keep
(tracemalloc), then times network_class per address kind in nanoseconds per lookup, with the ratio
to parsing the same address with ipaddress.ip_address measured in the same run (what any lookup
would pay just to read the address the usual way).

    .venv/bin/python bench/networks.py [--loads 5] [--lookups 200000]
"""

from __future__ import annotations

import argparse
import gc
import ipaddress
import sys
import time
import tracemalloc
from collections.abc import Callable
from importlib import resources
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from detectors.networks import NetworkRanges, default_ranges, network_class

ADDRESSES = {
    "IPv4, vpn": "85.254.52.1",
    "IPv4, datacenter": "157.53.248.7",
    "IPv4, eyeball": "36.112.0.1",
    "IPv6, datacenter": "2a11:49c0::5",
    "IPv6, eyeball": "2408:8207:1851::1",
    "IPv4-mapped IPv6": "::ffff:85.254.52.1",
    "malformed": "not-an-ip",
}


def per_call_ns(call: Callable[[str], object], value: str, count: int) -> float:
    started = time.perf_counter_ns()
    for _ in range(count):
        call(value)
    return (time.perf_counter_ns() - started) / count


def parse_with_ipaddress(value: str) -> object:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--lookups", type=int, default=200_000)
    args = parser.parse_args()

    data = resources.files("detectors") / "data"
    loads = []
    for _ in range(args.loads):
        started = time.perf_counter()
        NetworkRanges.from_directory(data)
        loads.append((time.perf_counter() - started) * 1000)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    ranges = NetworkRanges.from_directory(data)
    gc.collect()
    kept = tracemalloc.get_traced_memory()[0] - before
    peak = tracemalloc.get_traced_memory()[1] - before
    tracemalloc.stop()

    print(f"load: best {min(loads):.0f} ms of {args.loads} ({ranges.intervals} intervals)")
    print(f"memory kept {kept / 1e6:.1f} MB, peak while loading {peak / 1e6:.1f} MB")
    default_ranges()
    print(f"{'lookup':20} {'network_class':>14} {'ipaddress parse':>16} {'ratio':>6}")
    for label, value in ADDRESSES.items():
        ours = per_call_ns(network_class, value, args.lookups)
        base = per_call_ns(parse_with_ipaddress, value, args.lookups)
        print(f"{label:20} {ours:11.0f} ns {base:13.0f} ns {ours / base:6.2f}")


if __name__ == "__main__":
    main()
