"""People: a device, a place on the network, cookies per app, accounts and a household.

Where a click comes from depends on the hour: at home on Wi-Fi (the household's broadband address,
which its members share) mostly in the evening and at night, on mobile data (a carrier NAT address
shared with hundreds of strangers, or an IPv6 /64 inside a carrier /48) during the day, now and then
on a restaurant's Wi-Fi. A few honest people run an always-on VPN or a proxy on a cloud server.
A network attachment lasts a session (tens of minutes), so a quick second click comes from the same
address.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from random import Random

from gateway.simulate.clock import Calendar
from gateway.simulate.devices import BROWSER, DOUYIN, QQ, WECHAT, WEIBO, Device, random_device
from gateway.simulate.networks import AddressPlan, NatPool, Region
from gateway.simulate.sampling import Weighted

#: How likely an app context is to keep no cookie at all (decided once per person and app).
COOKIELESS = {WECHAT: 0.5, QQ: 0.45, WEIBO: 0.3, DOUYIN: 0.35, BROWSER: 0.03}
#: Probability of being on home Wi-Fi, per local hour (when the person has broadband).
_AT_HOME = (
    0.85, 0.88, 0.9, 0.9, 0.9, 0.88, 0.8, 0.6, 0.4, 0.32, 0.3, 0.3,
    0.35, 0.32, 0.3, 0.3, 0.32, 0.4, 0.55, 0.68, 0.72, 0.76, 0.8, 0.84,
)  # fmt: skip


_HOUSEHOLD_SIZES = Weighted((1, 2, 3, 4, 5, 6), (22, 27, 25, 15, 7, 4))


def visitor_id(rng: Random) -> str:
    """A visitor cookie value in the gateway's format (22 URL-safe characters)."""
    return base64.urlsafe_b64encode(rng.getrandbits(128).to_bytes(16, "big"))[:22].decode()


@dataclass(slots=True, eq=False)
class Person:
    pid: int
    region: Region
    device: Device
    pool: NatPool
    home: str | None = None  # household broadband address
    v6: str | None = None  # mobile IPv6 /64
    vpn: str | None = None  # always-on VPN or cloud proxy exit
    propensity: float = 1.0  # how readily they sign up
    user: str | None = None  # their account, once they have one
    joined: int = 0  # bit per campaign index
    contexts: dict[str, str] = field(default_factory=dict)  # app -> visitor id ("" = no cookies)
    household: list[Person] | None = None
    ip: str = ""
    net: str = "WIFI"
    ip_until: float = -1.0

    @property
    def actor(self) -> str:
        return f"p{self.pid}"

    def visitor(self, app: str, rng: Random) -> str | None:
        found = self.contexts.get(app)
        if found is None:
            found = "" if rng.random() < COOKIELESS[app] else visitor_id(rng)
            self.contexts[app] = found
        return found or None

    def clear_cookies(self, app: str, rng: Random) -> str | None:
        """A new visitor id in this context (cleared data, private tab, reinstalled app)."""
        self.contexts.pop(app, None)
        return self.visitor(app, rng)

    def joined_campaign(self, index: int) -> bool:
        return bool(self.joined >> index & 1)


class People:
    """Creates people and places them on the network."""

    def __init__(self, rng: Random, plan: AddressPlan, calendar: Calendar) -> None:
        self.rng = rng
        self.plan = plan
        self.calendar = calendar
        self.count = 0

    def new(self, near: Person | None = None, locality: float = 0.7) -> Person:
        """A new person; with probability ``locality`` in the same region as ``near``."""
        rng = self.rng
        self.count += 1
        if near is not None and rng.random() < locality:
            region = near.region
            pool = near.pool if rng.random() < 0.4 else self.plan.pool(rng, region)
        else:
            region = self.plan.region(rng)
            pool = self.plan.pool(rng, region)
        person = Person(self.count, region, random_device(rng), pool)
        if rng.random() < 0.78:
            person.home = self.plan.broadband_host(rng, region)
        if rng.random() < 0.2:
            person.v6 = self.plan.v6_interface(rng, pool)
        if rng.random() < 0.012:
            person.vpn = self.plan.vpn_exit(rng)
        person.propensity = min(2.0, rng.lognormvariate(0.0, 0.45))
        return person

    def household_of(self, person: Person) -> list[Person]:
        """The people sharing ``person``'s home (created on first use; 1-6 people in all)."""
        if person.household is not None:
            return person.household
        rng = self.rng
        size = _HOUSEHOLD_SIZES.draw(rng)
        if person.home is None:
            person.home = self.plan.broadband_host(rng, person.region)
        members = [person]
        for _ in range(size - 1):
            member = self.new(person, locality=1.0)
            member.home = person.home
            member.vpn = None
            members.append(member)
        for member in members:
            member.household = members
        return members

    def network(self, person: Person, ts: float) -> tuple[str, str]:
        """(IP, WeChat NetType) for a click at ``ts``; stable within a session."""
        if ts < person.ip_until:
            return person.ip, person.net
        rng = self.rng
        hour = self.calendar.local_hour(ts)
        if person.vpn is not None:
            ip = person.vpn
            net = "WIFI" if rng.random() < _AT_HOME[hour] else "5G"
        elif person.home is not None and rng.random() < _AT_HOME[hour]:
            ip, net = person.home, "WIFI"
        elif 17 <= hour <= 22 and rng.random() < 0.04:
            ip, net = rng.choice(person.region.venues), "WIFI"
        else:
            net = "5G" if rng.random() < 0.62 else "4G"
            if person.v6 is not None:
                ip = self.plan.v6_address(rng, person.v6)
            else:
                ip = person.pool.ip(rng)
        person.ip, person.net = ip, net
        person.ip_until = ts + 300.0 + rng.expovariate(1 / 1500.0)
        return ip, net
