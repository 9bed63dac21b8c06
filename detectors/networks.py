"""Is a client address in a datacenter or a VPN? Public CIDR lists, looked up by binary search.

The lists are X4BNet/lists_vpn's (MIT; ``detectors/data/SOURCE.md``): ``datacenter`` holds every
network that is not an eyeball network (hosting and cloud ASNs, VPN providers included), ``vpn``
the known VPN networks. An address on both is ``"vpn"``, the more specific finding.

They are read once, on the first lookup, into sorted arrays of disjoint integer intervals, one
set per address family, each interval labelled; a lookup parses the address and bisects once.
IPv4-mapped IPv6 addresses (``::ffff:203.0.113.9``, what a dual-stack socket reports) are looked
up as IPv4. Special-purpose ranges (private, loopback, link-local, carrier-grade NAT,
documentation, multicast) are cut out of the lists when they are loaded, so a proxy's or a test's
address is never a datacenter.

Hand-written rather than a radix tree such as pytricia: pytricia publishes no wheels (it would
need a C compiler in the image), and the interval arrays are a few dozen lines of stdlib that
also make "VPN wins" and the cut-outs a merge at load time instead of work per lookup.
``bench/networks.py`` measures load time, memory and lookups.
"""

from __future__ import annotations

import socket
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable

VPN = "vpn"
DATACENTER = "datacenter"
#: Interval labels as stored (one byte each), and the answers they stand for.
_KINDS = ("", VPN, DATACENTER)

_V4_MAPPED = bytes(10) + b"\xff\xff"

#: Never eyeball-or-not questions: addresses that are not on the public internet.
SPECIAL_PURPOSE = (
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/3",
    "::/127",
    "::ffff:0:0/96",
    "100::/64",
    "2001:db8::/32",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
)

Interval = tuple[int, int]


@dataclass(frozen=True, slots=True)
class _Table:
    """Disjoint intervals sorted by start; ``kinds[i]`` indexes _KINDS."""

    starts: Sequence[int]
    ends: Sequence[int]
    kinds: bytes

    def find(self, value: int) -> str:
        i = bisect_right(self.starts, value) - 1
        if i >= 0 and value <= self.ends[i]:
            return _KINDS[self.kinds[i]]
        return ""


def parse_cidr(text: str) -> tuple[int, Interval]:
    """``"203.0.113.0/24"`` -> (4, (first, last)) as integers; host bits are ignored.

    socket.inet_pton rather than ipaddress.ip_network: the same strict parse (dotted quads without
    leading zeros, RFC 4291 IPv6) at a fifth of the cost, which is most of the load time.
    """
    address, slash, length = text.strip().partition("/")
    family, bits, version = (socket.AF_INET6, 128, 6) if ":" in address else (socket.AF_INET, 32, 4)
    try:
        value = int.from_bytes(socket.inet_pton(family, address), "big")
    except OSError:
        raise ValueError(f"not a network: {text!r}") from None
    if not slash:
        prefix = bits
    elif length.isascii() and length.isdigit() and int(length) <= bits:
        prefix = int(length)
    else:
        raise ValueError(f"not a network: {text!r}")
    host = (1 << (bits - prefix)) - 1
    first = value & ~host
    return version, (first, first | host)


def _merged(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for first, last in sorted(intervals):
        if merged and first <= merged[-1][1] + 1:
            if last > merged[-1][1]:
                merged[-1] = (merged[-1][0], last)
        else:
            merged.append((first, last))
    return merged


def _without(keep: list[Interval], remove: list[Interval]) -> list[Interval]:
    """``keep`` minus ``remove``; both merged and sorted."""
    result: list[Interval] = []
    j = 0
    for first, last in keep:
        while j < len(remove) and remove[j][1] < first:
            j += 1
        start = first
        k = j
        while k < len(remove) and remove[k][0] <= last and start <= last:
            cut_first, cut_last = remove[k]
            if cut_first > start:
                result.append((start, cut_first - 1))
            start = max(start, cut_last + 1)
            k += 1
        if start <= last:
            result.append((start, last))
    return result


def _table(
    vpn: list[Interval], datacenter: list[Interval], special: list[Interval], v4: bool
) -> _Table:
    vpn = _without(_merged(vpn), special)
    datacenter = _without(_without(_merged(datacenter), vpn), special)
    labelled = sorted([(*i, 1) for i in vpn] + [(*i, 2) for i in datacenter])
    starts = [first for first, _, _ in labelled]
    ends = [last for _, last, _ in labelled]
    kinds = bytes(kind for _, _, kind in labelled)
    if v4:
        # Unsigned 32-bit arrays: a tenth of the memory of lists of ints.
        return _Table(array("I", starts), array("I", ends), kinds)
    return _Table(starts, ends, kinds)


class NetworkRanges:
    """Datacenter and VPN ranges of both address families, ready for lookups."""

    def __init__(self, *, vpn: Iterable[str], datacenter: Iterable[str]) -> None:
        lists: dict[tuple[str, int], list[Interval]] = {
            (kind, version): [] for kind in (VPN, DATACENTER, "special") for version in (4, 6)
        }
        for kind, lines in ((VPN, vpn), (DATACENTER, datacenter), ("special", SPECIAL_PURPOSE)):
            for line in lines:
                if line.strip() and not line.lstrip().startswith("#"):
                    version, interval = parse_cidr(line)
                    lists[kind, version].append(interval)
        self._v4 = _table(
            lists[VPN, 4], lists[DATACENTER, 4], _merged(lists["special", 4]), v4=True
        )
        self._v6 = _table(
            lists[VPN, 6], lists[DATACENTER, 6], _merged(lists["special", 6]), v4=False
        )

    @classmethod
    def from_directory(cls, directory: Traversable) -> NetworkRanges:
        """From vpn-ipv4.txt, vpn-ipv6.txt, datacenter-ipv4.txt and datacenter-ipv6.txt."""

        def lines(*names: str) -> list[str]:
            return [
                line
                for name in names
                for line in directory.joinpath(name).read_text(encoding="ascii").splitlines()
            ]

        return cls(
            vpn=lines("vpn-ipv4.txt", "vpn-ipv6.txt"),
            datacenter=lines("datacenter-ipv4.txt", "datacenter-ipv6.txt"),
        )

    @property
    def intervals(self) -> int:
        """How many disjoint labelled intervals the lists merged into."""
        return len(self._v4.kinds) + len(self._v6.kinds)

    def classify(self, ip: str) -> str:
        """``"vpn"``, ``"datacenter"`` or ``""`` (eyeball network, unknown, or not an address)."""
        try:
            if ":" in ip:
                packed = socket.inet_pton(socket.AF_INET6, ip)
                if packed[:12] == _V4_MAPPED:
                    return self._v4.find(int.from_bytes(packed[12:], "big"))
                return self._v6.find(int.from_bytes(packed, "big"))
            return self._v4.find(int.from_bytes(socket.inet_pton(socket.AF_INET, ip), "big"))
        except (OSError, ValueError, TypeError):
            # Malformed, a zone id ("fe80::1%eth0"), an embedded NUL, not text.
            return ""


@cache
def default_ranges() -> NetworkRanges:
    """The shipped lists, loaded on first use (a race of two first lookups loads them twice)."""
    return NetworkRanges.from_directory(resources.files("detectors") / "data")


def network_class(ip: str) -> str:
    """``"vpn"`` | ``"datacenter"`` | ``""``; ``""`` for malformed input too."""
    return default_ranges().classify(ip)
