"""Datacenter and VPN classification of client addresses (detectors/networks.py)."""

from __future__ import annotations

import fnmatch
import ipaddress
import random
import tomllib
from collections import Counter, defaultdict
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from detectors.networks import (
    SPECIAL_PURPOSE,
    NetworkRanges,
    default_ranges,
    network_class,
    parse_cidr,
)

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "detectors" / "data"
LISTS = ("datacenter-ipv4.txt", "datacenter-ipv6.txt", "vpn-ipv4.txt", "vpn-ipv6.txt")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Buckets = dict[tuple[int, int], list[Network]]


def lines(name: str) -> list[str]:
    return [line.strip() for line in (DATA / name).read_text().splitlines() if line.strip()]


def neighbours(network: str) -> tuple[str, str, str, str]:
    """The network's first and last addresses and the addresses just outside it."""
    net = ipaddress.ip_network(network)
    first, last = net.network_address, net.broadcast_address
    return str(first), str(last), str(first - 1), str(last + 1)


@pytest.mark.parametrize(
    ("name", "network", "kind"),
    [
        ("datacenter-ipv4.txt", "157.53.248.0/24", "datacenter"),
        ("datacenter-ipv4.txt", "45.91.254.0/23", "datacenter"),
        ("vpn-ipv4.txt", "85.254.52.0/22", "vpn"),
        ("vpn-ipv4.txt", "104.28.60.160/31", "vpn"),
        ("datacenter-ipv6.txt", "2602:810:400b::/48", "datacenter"),
        ("datacenter-ipv6.txt", "2a11:49c0::/29", "datacenter"),
        ("vpn-ipv6.txt", "2607:6b80:4b::/48", "vpn"),
        ("vpn-ipv6.txt", "2a07:f300::/29", "vpn"),
    ],
)
def test_known_ranges(name: str, network: str, kind: str) -> None:
    assert network in lines(name)
    first, last, before, after = neighbours(network)
    assert network_class(first) == kind
    assert network_class(last) == kind
    # Chosen with no listed range next to them.
    assert network_class(before) == ""
    assert network_class(after) == ""


def test_vpn_wins_over_datacenter() -> None:
    # The datacenter list includes VPN providers: this /24 is on both lists.
    assert "2.26.157.0/24" in lines("vpn-ipv4.txt")
    assert "2.26.157.0/24" in lines("datacenter-ipv4.txt")
    assert network_class("2.26.157.1") == "vpn"
    ranges = NetworkRanges(vpn=["198.18.0.0/15", "9.9.9.0/24"], datacenter=["9.9.0.0/16"])
    assert [ranges.classify(ip) for ip in ("9.9.8.255", "9.9.9.0", "9.9.9.255", "9.9.10.0")] == [
        "datacenter",
        "vpn",
        "vpn",
        "datacenter",
    ]


def test_ipv4_mapped_ipv6_is_looked_up_as_ipv4() -> None:
    assert network_class("::ffff:85.254.52.1") == "vpn"
    assert network_class("::ffff:157.53.248.7") == "datacenter"
    assert network_class("::FFFF:157.53.248.7") == "datacenter"
    assert network_class("::ffff:10.1.2.3") == ""
    # Not mapped: the IPv4-compatible form (deprecated) and NAT64 are other IPv6 addresses.
    assert network_class("::157.53.248.7") == ""


@pytest.mark.parametrize(
    "ip",
    [
        "",
        " ",
        "abc",
        "1.2.3",
        "1.2.3.4.5",
        "256.1.1.1",
        "01.2.3.4",
        "157.53.248.7 ",
        " 157.53.248.7",
        "157.53.248.7/32",
        "[2602:810:400b::1]",
        "2602:810:400b::1%eth0",
        "fe80::1%eth0",
        "::ffff:999.1.1.1",
        "2602:810:400b:::1",
        "157.53.248.7\x00",
        "١٥٧.٥٣.٢٤٨.٧",
        "0x9d.53.248.7",
    ],
)
def test_malformed_input_is_no_finding(ip: str) -> None:
    assert network_class(ip) == ""


@pytest.mark.parametrize(
    "ip",
    [
        "10.0.0.1",
        "10.255.255.255",
        "172.16.0.1",
        "172.31.255.254",
        "192.168.1.1",
        "127.0.0.1",
        "100.64.0.1",
        "169.254.169.254",
        "0.0.0.0",  # noqa: S104 - an address to classify, not one to bind
        "255.255.255.255",
        "224.0.0.1",
        "192.0.2.1",
        "203.0.113.9",
        "::1",
        "::",
        "fe80::1",
        "fd12:3456:789a::1",
        "2001:db8::1",
        "ff02::1",
        "::ffff:192.168.0.1",
    ],
)
def test_private_and_special_addresses_are_not_datacenter(ip: str) -> None:
    assert network_class(ip) == ""


def test_special_purpose_ranges_are_cut_out_of_any_list() -> None:
    ranges = NetworkRanges(
        vpn=["172.0.0.0/8"],
        datacenter=["8.0.0.0/6", "192.0.0.0/8", "::/0"],
    )
    assert ranges.classify("10.1.2.3") == ""
    assert ranges.classify("9.255.255.255") == "datacenter"
    assert ranges.classify("11.0.0.0") == "datacenter"
    assert ranges.classify("172.15.255.255") == "vpn"
    assert ranges.classify("172.16.0.0") == ""
    assert ranges.classify("172.31.255.255") == ""
    assert ranges.classify("172.32.0.0") == "vpn"
    assert ranges.classify("192.168.0.1") == ""
    assert ranges.classify("192.167.255.255") == "datacenter"
    assert ranges.classify("192.0.2.77") == ""
    assert ranges.classify("2606:4700::1") == "datacenter"
    assert ranges.classify("fd00::1") == ""
    assert ranges.classify("fe80::1") == ""
    assert ranges.classify("::1") == ""


@pytest.mark.parametrize(
    "text",
    ["1.2.3.0/24", "1.2.3.77/24", "1.2.3.4", "0.0.0.0/0", "2001:db8:1::/48", "2001:db8::1/64"],
)
def test_parse_cidr_agrees_with_ipaddress(text: str) -> None:
    network = ipaddress.ip_network(text, strict=False)
    assert parse_cidr(text) == (
        network.version,
        (int(network.network_address), int(network.broadcast_address)),
    )


@pytest.mark.parametrize(
    "text", ["1.2.3.0/33", "1.2.3.0/", "1.2.3/24", "::/129", "x/8", "1.2.3.0/-1"]
)
def test_bad_list_lines_fail_loudly(text: str) -> None:
    with pytest.raises(ValueError, match="not a network"):
        NetworkRanges(vpn=[], datacenter=["8.8.8.0/24", text])


def test_comments_and_blank_lines_are_skipped() -> None:
    ranges = NetworkRanges(vpn=["# a comment", "", "  "], datacenter=["8.8.8.0/24  "])
    assert ranges.classify("8.8.8.8") == "datacenter"
    assert ranges.intervals == 1


# -- consistency with the ipaddress module over a random sample of the lists -----------------


def buckets(names: tuple[str, ...]) -> Buckets:
    """Listed networks by version and leading bits (every line is a /9 or longer for IPv4 and a
    /24 or longer for IPv6, so each falls in one bucket of /8s or /16s)."""
    found: Buckets = defaultdict(list)
    for name in names:
        for line in lines(name):
            network = ipaddress.ip_network(line)
            found[bucket_of(network.network_address)].append(network)
    return found


def bucket_of(address: Address) -> tuple[int, int]:
    return address.version, int(address) >> (24 if address.version == 4 else 112)


SPECIAL = [ipaddress.ip_network(n) for n in SPECIAL_PURPOSE]


def expected(address: Address, vpn: Buckets, dc: Buckets) -> str:
    """The answer by brute force: the ipaddress module's `in` over the listed networks."""
    if any(address in net for net in SPECIAL if net.version == address.version):
        return ""
    key = bucket_of(address)
    if any(address in net for net in vpn.get(key, ())):
        return "vpn"
    if any(address in net for net in dc.get(key, ())):
        return "datacenter"
    return ""


def test_consistent_with_ipaddress_on_a_random_sample() -> None:
    vpn = buckets(("vpn-ipv4.txt", "vpn-ipv6.txt"))
    dc = buckets(("datacenter-ipv4.txt", "datacenter-ipv6.txt"))
    rng = random.Random(20260211)
    checked: Counter[str] = Counter()
    for name in LISTS:
        for line in rng.sample(lines(name), 150):
            network = ipaddress.ip_network(line)
            first, last = network.network_address, network.broadcast_address
            inside = first + rng.randrange(network.num_addresses)
            for address in (first, last, inside, first - 1, last + 1):
                found = network_class(str(address))
                assert found == expected(address, vpn, dc), (line, str(address))
                checked[found] += 1
                if address.version == 4:
                    mapped = f"::ffff:{address}"
                    assert network_class(mapped) == found, mapped
    # The sample reached all three answers.
    assert checked["vpn"] and checked["datacenter"] and checked[""]


def small_networks() -> st.SearchStrategy[list[str]]:
    """Networks inside 44.0.0.0/26 (ordinary public space): small enough that they often
    overlap, nest, touch or coincide."""
    network = st.builds(
        lambda offset, prefix: str(ipaddress.ip_network(f"44.0.0.{offset}/{prefix}", strict=False)),
        st.integers(0, 63),
        st.integers(26, 32),
    )
    return st.lists(network, max_size=8)


@given(small_networks(), small_networks())
def test_merging_agrees_with_ipaddress(vpn: list[str], datacenter: list[str]) -> None:
    ranges = NetworkRanges(vpn=vpn, datacenter=datacenter)
    vpn_nets = [ipaddress.ip_network(n) for n in vpn]
    dc_nets = [ipaddress.ip_network(n) for n in datacenter]
    for probe in range(66):
        address = ipaddress.ip_address("43.255.255.255") + probe
        want = (
            "vpn"
            if any(address in n for n in vpn_nets)
            else "datacenter"
            if any(address in n for n in dc_nets)
            else ""
        )
        assert ranges.classify(str(address)) == want, (vpn, datacenter, str(address))


# -- shipping the lists ----------------------------------------------------------------------


def test_the_lists_ship_as_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["detectors"]
    shipped = {path.name for path in DATA.iterdir()}
    assert set(LISTS) | {"SOURCE.md", "LICENSE.upstream"} <= shipped
    for name in shipped:
        assert any(fnmatch.fnmatch(f"data/{name}", p) for p in patterns), name
    packaged = resources.files("detectors") / "data"
    for name in LISTS:
        assert packaged.joinpath(name).read_text() == (DATA / name).read_text()


def test_the_lists_are_loaded_once() -> None:
    ranges = default_ranges()
    assert default_ranges() is ranges
    # Merging drops the VPN ranges that the datacenter list repeats, and adjacent ranges.
    assert 30_000 < ranges.intervals < sum(len(lines(name)) for name in LISTS)
