"""The address plan: carrier NAT pools, home broadband, venue Wi-Fi, VPNs and datacenters.

Sizes grow linearly with the scale so that the crowding stays the same at every scale: a carrier
NAT public IPv4 address carries a few hundred unrelated honest visitors (the busiest a thousand or
more), a broadband /24 holds dozens of households, a venue's Wi-Fi serves every family eating there.
"""

from __future__ import annotations

import ipaddress
from bisect import bisect
from dataclasses import dataclass, field
from itertools import accumulate
from random import Random

from gateway.simulate import netdata
from gateway.simulate.sampling import Weighted, below

CARRIERS = ("cm", "cu", "ct")
_MOBILE_SHARE = (0.58, 0.20, 0.22)
_MOBILE_CUMULATIVE = (0.58, 0.78)
_BROADBAND_SHARE = (0.10, 0.35, 0.55)
#: (name, share of the population): the promotion's chain is strongest in the south and east.
REGIONS = (
    ("guangdong-sz", 0.20), ("guangdong-gz", 0.16), ("zhejiang-hz", 0.13), ("shanghai", 0.12),
    ("beijing", 0.10), ("sichuan-cd", 0.11), ("hubei-wh", 0.09), ("jiangsu-nj", 0.09),
)  # fmt: skip
#: Public NAT addresses per unit of scale (one honest seed sharer brings ~50 mobile visitors).
NAT_IPS_PER_SCALE = 0.12
BROADBAND_24S_PER_SCALE = 1.2
VENUES_PER_SCALE = 0.03


def _random_subnet(rng: Random, cidr: str, prefix: int) -> int:
    """The first address (as an int) of a random /prefix inside ``cidr``."""
    network = ipaddress.ip_network(cidr)
    count = 1 << (prefix - network.prefixlen)
    return int(network.network_address) + rng.randrange(count) * (1 << (32 - prefix))


def _dotted(value: int) -> str:
    return f"{value >> 24}.{(value >> 16) & 255}.{(value >> 8) & 255}.{value & 255}"


@dataclass(slots=True, eq=False)
class NatPool:
    """One carrier's mobile-data egress in one region: a few /24s of shared public addresses."""

    carrier: str
    ips: list[str]
    cumulative: list[float]
    v6: list[str]  # /48 prefixes, e.g. "2409:8a55:1c2a"

    def ip(self, rng: Random) -> str:
        return self.ips[bisect(self.cumulative, rng.random() * self.cumulative[-1])]


@dataclass(slots=True, eq=False)
class Region:
    name: str
    weight: float
    pools: list[NatPool] = field(default_factory=list)
    broadband: list[int] = field(default_factory=list)  # /24 network addresses
    venues: list[str] = field(default_factory=list)


class AddressPlan:
    def __init__(self, rng: Random, scale: int) -> None:
        self.regions = [Region(name, weight) for name, weight in REGIONS]
        self._regions = Weighted(self.regions, [r.weight for r in self.regions])
        for region in self.regions:
            for carrier, share in zip(CARRIERS, _MOBILE_SHARE, strict=True):
                region.pools.append(self._nat_pool(rng, carrier, scale * region.weight * share))
            for carrier, share in zip(CARRIERS, _BROADBAND_SHARE, strict=True):
                count = max(2, round(BROADBAND_24S_PER_SCALE * scale * region.weight * share))
                block = rng.choice(netdata.BROADBAND_BLOCKS[carrier])
                base16 = _random_subnet(rng, block, 16)
                picked = rng.sample(range(256), min(count, 256))
                region.broadband.extend(base16 + (third << 8) for third in picked)
                if count > 256:  # very large scales: more /16s
                    for _ in range(count - 256):
                        region.broadband.append(_random_subnet(rng, block, 24))
            venues = max(2, round(VENUES_PER_SCALE * scale * region.weight))
            region.venues = [self.broadband_host(rng, region) for _ in range(venues)]
        self.pools = [pool for region in self.regions for pool in region.pools]
        self.datacenter = [ipaddress.ip_network(c) for c in netdata.DATACENTER_SAMPLE]
        self.cloud_proxy = [ipaddress.ip_network(c) for c in netdata.CLOUD_PROXY_SAMPLE]
        self.vpn = [ipaddress.ip_network(c) for c in netdata.VPN_SAMPLE]

    @staticmethod
    def _nat_pool(rng: Random, carrier: str, people_scale: float) -> NatPool:
        count = max(2, round(NAT_IPS_PER_SCALE * people_scale))
        block = rng.choice(netdata.MOBILE_BLOCKS[carrier])
        # CGNAT egress: a few /24s, up to ~24 public addresses in use in each.
        nets = [_random_subnet(rng, block, 24) for _ in range(max(1, -(-count // 24)))]
        ips = [_dotted(rng.choice(nets) + rng.randint(1, 254)) for _ in range(count)]
        # Load is uneven: the busiest addresses carry many times the quiet ones.
        weights = [1.0 / (rank + 1) ** 0.7 for rank in range(count)]
        prefix6 = netdata.IPV6_PREFIXES[carrier]
        v6 = [
            f"{prefix6}{rng.randrange(256):02x}:{rng.randrange(1, 65536):x}"
            for _ in range(rng.randint(1, 3))
        ]
        return NatPool(carrier, ips, list(accumulate(weights)), v6)

    # Choosing networks ------------------------------------------------------------------

    def region(self, rng: Random) -> Region:
        return self._regions.draw(rng)

    @staticmethod
    def pool(rng: Random, region: Region) -> NatPool:
        return region.pools[bisect(_MOBILE_CUMULATIVE, rng.random())]

    @staticmethod
    def broadband_host(rng: Random, region: Region, net: int | None = None) -> str:
        base = net if net is not None else region.broadband[below(rng, len(region.broadband))]
        return _dotted(base + 2 + below(rng, 253))

    @staticmethod
    def v6_interface(rng: Random, pool: NatPool) -> str:
        """A /64 of a phone on IPv6 mobile data (the phone's privacy address is added per use)."""
        return f"{rng.choice(pool.v6)}:{1 + below(rng, 65535):x}"

    @staticmethod
    def v6_address(rng: Random, interface: str) -> str:
        a, b, c, d = (1 + below(rng, 65535) for _ in range(4))
        return f"{interface}:{a:x}:{b:x}:{c:x}:{d:x}"

    @staticmethod
    def _host_in(rng: Random, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> str:
        network = rng.choice(networks)
        return str(network.network_address + rng.randrange(1, network.num_addresses - 1))

    def vpn_exit(self, rng: Random) -> str:
        """Honest users with an always-on VPN or a self-built proxy on a cloud server."""
        if rng.random() < 0.35:
            return self._host_in(rng, list(self.cloud_proxy))
        return self._host_in(rng, list(self.vpn))

    def datacenter_net(self, rng: Random) -> int:
        """A random /24 (as an int) inside the datacenter sample."""
        network = rng.choice(self.datacenter)
        return _random_subnet(rng, str(network), 24)

    @staticmethod
    def host(rng: Random, net24: int) -> str:
        return _dotted(net24 + rng.randint(2, 254))

    def residential_proxy(self, rng: Random) -> str:
        """An exit of a residential or mobile proxy network: an address honest people use too."""
        region = self.region(rng)
        if rng.random() < 0.55:
            return self.pool(rng, region).ip(rng)
        return self.broadband_host(rng, region)
