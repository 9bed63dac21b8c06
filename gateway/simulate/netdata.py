"""Address blocks the simulator draws from.

Eyeball blocks: public ranges of Chinese consumer carriers (mobile data behind carrier-grade NAT,
and home broadband), as they appear in access logs; they were checked not to overlap the
datacenter and VPN lists below. IPv6: the carriers' well-known /24s (2409:8a00::/24,
2408:8400::/24, 240e:300::/24), split into /48s.

Datacenter and VPN samples: a few CIDRs copied verbatim from X4BNet/lists_vpn (MIT licence,
Copyright (c) 2024 X4B (Mathew Heard)), snapshot commit 167937a76d424a1a176eccda7d929e40cedd6b40,
``output/datacenter/ipv4.txt`` and ``output/vpn/ipv4.txt`` (copies in ../shared/corpora/
datacenter-ip-ranges/). They are cloud and hosting ranges (Alibaba Cloud, Tencent Cloud, Huawei
Cloud, AWS, DigitalOcean, Vultr, Hetzner, OVH) and commercial VPN exits, so a detector built on the
full list recognises the simulator's bots and honest VPN users alike.
"""

from __future__ import annotations

#: Mobile data (CGNAT egress) blocks per carrier.
MOBILE_BLOCKS: dict[str, tuple[str, ...]] = {
    "cm": ("117.136.0.0/13", "223.104.0.0/14", "111.0.0.0/10", "39.144.0.0/14"),
    "cu": ("112.96.0.0/13", "58.240.0.0/12"),
    "ct": ("36.96.0.0/11",),
}
#: Home and business broadband blocks per carrier.
BROADBAND_BLOCKS: dict[str, tuple[str, ...]] = {
    "ct": (
        "113.64.0.0/11",
        "183.0.0.0/10",
        "222.64.0.0/11",
        "180.160.0.0/12",
        "14.16.0.0/12",
        "125.88.0.0/13",
        "59.32.0.0/13",
    ),
    "cu": ("123.112.0.0/12", "221.216.0.0/13", "221.4.0.0/16"),
    "cm": ("120.204.0.0/14",),
}
#: The leading hex digits of each carrier's IPv6 /24 (a /48 appends two hex digits and a group).
IPV6_PREFIXES: dict[str, str] = {"cm": "2409:8a", "cu": "2408:84", "ct": "240e:3"}

DATACENTER_SAMPLE: tuple[str, ...] = (
    "47.74.0.0/15",
    "8.210.0.0/15",
    "119.28.0.0/17",
    "129.226.0.0/20",
    "101.32.0.0/18",
    "139.9.0.0/17",
    "150.109.0.0/21",
    "3.0.0.0/15",
    "159.65.0.0/16",
    "167.99.0.0/16",
    "165.227.0.0/16",
    "104.248.0.0/16",
    "45.32.0.0/16",
    "95.216.0.0/15",
    "5.161.0.0/16",
    "51.75.0.0/16",
)
#: Cloud ranges in Hong Kong and Singapore that honest users' self-built proxies run on.
CLOUD_PROXY_SAMPLE: tuple[str, ...] = ("47.74.0.0/15", "8.210.0.0/15", "119.28.0.0/17")
VPN_SAMPLE: tuple[str, ...] = (
    "45.84.39.0/24",
    "86.106.20.0/24",
    "95.135.101.0/24",
    "136.0.164.0/23",
    "149.33.42.0/23",
    "170.62.244.0/23",
    "173.244.58.0/24",
    "192.177.134.0/23",
    "79.121.150.0/23",
)
