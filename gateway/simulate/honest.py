"""Honest referral trees: a branching process with heavy-tailed reach and human delays.

A sharer posts their link 1-3 times (a private chat or Moments, or a group chat) in the app they
use (WeChat 82%, QQ 8%, Weibo 4%, Douyin 4%, other 2%). How many people click is heavy-tailed
(lognormal): participants who share mostly reach 0-5 people (median 2.4), one in ten is a group
owner with a few dozen (median 16); seed sharers, who found the campaign themselves, reach more
(median 5; 40% are group owners with median 30). Viral sharers (one seed in 200, one participant
in 10,000) also publish to a public Weibo/Douyin/official account in the daytime, drawing
hundreds to thousands of strangers within hours (Pareto, alpha 1.8, from 600, capped at 5,000,
following the post in real time). Before posting, half the sharers send the link to their
household, whose members click from the shared home address (and one in twelve signs up on the
sharer's own phone); a few check their own link.

Friends click after a lognormal delay in activity time (median 15-35 minutes at the baseline rate,
seconds to hours in practice), in the app the link was shared in; cookie-less webviews send no
visitor id; one in ten in-app visitors sees the fallback page and reopens the link in the system
browser seconds later (a second click, same address, new visitor id); 7% click again later; 5%
are people who clicked or joined before. A click converts with a probability set by the relation
(household 55%, friend 32%, group 17%, public audience 8.5%) times the person's own propensity,
20 s to 10 minutes after the click (6% come back hours later). A new participant shares with
probability 0.4 (household members 0.28, strangers from a public post 0.14): each participant's
link brings 0.73 new sharers on average, so trees end (subcritical) and grow to about four times
their root's reach, sometimes 10-15 levels deep.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from math import log
from random import Random

from gateway.simulate.clock import Calendar
from gateway.simulate.devices import BROWSER, DOUYIN, IN_APP, QQ, WECHAT, WEIBO
from gateway.simulate.people import People, Person
from gateway.simulate.sampling import Weighted
from gateway.simulate.world import ORGANIC, Campaign, Label, Sharer, World

ORDINARY, ACTIVE, VIRAL = 0, 1, 2
FAMILY, FRIEND, GROUP, PUBLIC = 0, 1, 2, 3
_CONVERT = (0.55, 0.32, 0.17, 0.085)
#: Share-to-click delay per relation: (log median, sigma) in activity hours.
_DELAY = ((log(0.6), 1.0), (log(0.35), 1.3), (log(0.25), 1.2), (log(0.5), 1.0))
_LOCALITY = (1.0, 0.75, 0.7, 0.25)
#: Strangers from a public post share less than friends do (and elders in the household).
_SHARE_FACTOR = (0.7, 1.0, 1.0, 0.35)
_APP_MIX = Weighted((WECHAT, QQ, WEIBO, DOUYIN, BROWSER), (82, 8, 4, 4, 2))
_PUBLIC_APPS = (WEIBO, DOUYIN, WECHAT)
#: Participants who share (times _SHARE_FACTOR): with the reach below the process is subcritical.
SHARE_PROBABILITY = 0.4
SEED_ACTIVE = 0.4
PARTICIPANT_ACTIVE = 0.1
PARTICIPANT_VIRAL = 0.0001
#: Reach (people who click): (log median, sigma) of ordinary and active sharers, for seeds (the
#: campaign's enthusiasts, who found it themselves) and participants.
_REACH = {
    (True, ORDINARY): (log(5.0), 1.0),
    (True, ACTIVE): (log(30.0), 0.8),
    (False, ORDINARY): (log(2.4), 1.0),
    (False, ACTIVE): (log(16.0), 0.8),
}
RETURNING_POOL = 20000


@dataclass(slots=True, eq=False)
class Visit:
    sharer: Sharer
    relation: int
    app: str
    viral: bool
    person: Person | None = None


@dataclass(slots=True, eq=False)
class Pending:
    """A visitor on their way to converting: the click that will convert, and the tag."""

    visit: Visit
    person: Person
    click_id: str
    variant: str


class Honest:
    def __init__(self, world: World, rng: Random, people: People, calendar: Calendar) -> None:
        self.world = world
        self.rng = rng
        self.people = people
        self.calendar = calendar
        self.returning: list[Person] = []
        #: A sample of honest participants (second campaigns recruit seeds among them).
        self.members: list[Person] = []
        #: Called when a sharer decides to refer themselves (set by the attack planner).
        self.on_self_referral: Callable[[Sharer, float], None] | None = None
        self.self_referral_rate = 0.004

    # Seeds ------------------------------------------------------------------------------

    def plan_seeds(self, campaign: Campaign, viral: int, self_referrers: int, reuse: float) -> None:
        """Schedule ``campaign.seeds`` seed sharers, arriving with human activity."""
        rng, cal = self.rng, self.calendar
        first, last = cal.activity(campaign.start), cal.activity(campaign.end - 3 * 3600)
        viral_first = cal.activity(campaign.start + 6 * 3600)
        viral_last = max(viral_first, cal.activity(campaign.end - 30 * 3600))
        chosen = set(rng.sample(range(campaign.seeds), min(campaign.seeds, self_referrers)))
        for index in range(campaign.seeds):
            is_viral = index < viral
            low, high = (viral_first, viral_last) if is_viral else (first, last)
            ts = cal.moment(rng.uniform(low, high))
            klass = VIRAL if is_viral else (ACTIVE if rng.random() < SEED_ACTIVE else ORDINARY)
            action = partial(self._seed, campaign, klass, index in chosen, reuse)
            self.world.at(ts, action)

    def _seed(
        self, campaign: Campaign, klass: int, self_referrer: bool, reuse: float, ts: float
    ) -> None:
        rng = self.rng
        person = None
        if self.members and rng.random() < reuse:
            candidate = rng.choice(self.members)
            if not candidate.joined_campaign(campaign.index):
                person = candidate
        if person is None:
            person = self.people.new()
        if person.user is None:
            person.user = self.world.new_user()
        person.joined |= 1 << campaign.index
        campaign.joined.add(person.user)
        self._start(
            campaign, person, klass, seed=True, joined=None, self_referrer=self_referrer, ts=ts
        )

    # Sharing ----------------------------------------------------------------------------

    def _start(
        self,
        campaign: Campaign,
        person: Person,
        klass: int,
        seed: bool,
        joined: float | None,
        self_referrer: bool,
        ts: float,
    ) -> None:
        assert person.user is not None
        world, rng, cal = self.world, self.rng, self.calendar
        referrer = world.referrer(campaign, person.user, seed=seed, joined=joined)
        sharer = Sharer(person, campaign, referrer)
        campaign.sharers.append(sharer)
        if self_referrer and self.on_self_referral is not None:
            self.on_self_referral(sharer, ts)
        end = campaign.end
        app = _APP_MIX.draw(rng)
        when = cal.after(ts, rng.lognormvariate(log(0.1), 1.0))
        if rng.random() < 0.5:
            self._family(sharer, when)
        if rng.random() < 0.06:
            # People check that their own link works: same device and cookie, no sign-up.
            check = when + rng.lognormvariate(log(40.0), 0.8)
            if check < end:
                world.at(check, partial(self._own_check, sharer))
        if klass == VIRAL:
            public = self._daytime(when)
            if public < end:
                audience = int(min(5000.0, 600.0 * rng.paretovariate(1.8)))
                world.at(
                    public,
                    partial(self._post, sharer, klass, rng.choice(_PUBLIC_APPS), audience, True),
                )
            klass = ACTIVE
        reach = self._reach(klass, seed)
        posts = 1 + (rng.random() < (0.3, 0.5)[klass]) + (rng.random() < (0.1, 0.25)[klass])
        counts = [0] * posts
        for post in rng.choices(range(posts), (1.0, 0.6, 0.4)[:posts], k=reach):
            counts[post] += 1
        for count in counts:
            if when >= end:
                break
            if count:
                world.at(when, partial(self._post, sharer, klass, app, count, False))
            when = cal.after(when, rng.lognormvariate(log(3.0), 0.9))

    def _daytime(self, ts: float) -> float:
        """Influencers schedule their posts in the daytime (9:00-17:00)."""
        hour = self.calendar.local_hour(ts)
        if 9 <= hour < 17:
            return ts
        wait = ((9 - hour) % 24) * 3600.0 - ts % 3600.0
        return ts + wait + self.rng.uniform(0.0, 8 * 3600.0)

    def _reach(self, klass: int, seed: bool) -> int:
        mu, sigma = _REACH[(seed, klass)]
        return int(self.rng.lognormvariate(mu, sigma))

    def _family(self, sharer: Sharer, ts: float) -> None:
        rng, cal = self.rng, self.calendar
        index = sharer.campaign.index
        for member in self.people.household_of(sharer.person):
            if member is sharer.person or member.joined_campaign(index) or rng.random() > 0.65:
                continue
            mu, sigma = _DELAY[FAMILY]
            at = cal.after(ts, rng.lognormvariate(mu, sigma))
            if at < sharer.campaign.end:
                visit = Visit(sharer, FAMILY, WECHAT, False, member)
                self.world.at(at, partial(self._visit, visit))

    def _post(
        self, sharer: Sharer, klass: int, app: str, count: int, public: bool, ts: float
    ) -> None:
        rng, cal, world = self.rng, self.calendar, self.world
        end = sharer.campaign.end
        for _ in range(count):
            if public:
                relation = PUBLIC if rng.random() < 0.92 else FRIEND
            elif klass == ACTIVE:
                relation = GROUP if rng.random() < 0.75 else FRIEND
            else:
                relation = FRIEND if rng.random() < 0.7 else GROUP
            mu, sigma = _DELAY[relation]
            if relation == PUBLIC:
                # An influencer's audience follows the post in real time, whatever the hour.
                at = ts + 3600.0 * rng.lognormvariate(mu, sigma)
            else:
                at = cal.after(ts, rng.lognormvariate(mu, sigma))
            if at < end:
                world.at(at, partial(self._visit, Visit(sharer, relation, app, public)))

    # Visits -----------------------------------------------------------------------------

    def _visitor(self, visit: Visit) -> tuple[Person, str]:
        rng = self.rng
        if visit.person is not None:
            return visit.person, ""
        if self.returning and rng.random() < 0.05:
            return rng.choice(self.returning), "returning"
        person = self.people.new(visit.sharer.person, _LOCALITY[visit.relation])
        if rng.random() < 0.2:
            self._remember(person)
        return person, ""

    def _remember(self, person: Person) -> None:
        if len(self.returning) < RETURNING_POOL:
            self.returning.append(person)
        else:
            self.returning[self.rng.randrange(RETURNING_POOL)] = person

    def _visit(self, visit: Visit, ts: float) -> None:
        rng = self.rng
        person, variant = self._visitor(visit)
        owner = person
        if visit.relation == FAMILY:
            variant = "household"
            if rng.random() < 0.08:
                owner, variant = visit.sharer.person, "shared_device"
        elif visit.viral:
            variant = "viral"  # an influencer's audience, however they arrive
        app = visit.app
        if not owner.device.mobile and app != WECHAT:
            app = BROWSER
        click_id = self._click(ts, visit, person, owner, app, variant)
        if click_id is None:
            return
        campaign = visit.sharer.campaign
        converts = (
            not person.joined_campaign(campaign.index)
            and rng.random() < _CONVERT[visit.relation] * person.propensity
        )
        if app in IN_APP and owner.device.mobile and rng.random() < 0.1:
            pending = Pending(visit, person, click_id, variant)
            reopen = ts + 3.0 + rng.lognormvariate(log(22.0), 0.9)
            self.world.at(reopen, partial(self._reopen, pending, owner, converts))
        elif converts:
            self._schedule_conversion(Pending(visit, person, click_id, variant), ts)
        if rng.random() < 0.07:
            again = self.calendar.after(ts, rng.lognormvariate(0.0, 1.3))
            if again < campaign.end:
                self.world.at(again, partial(self._repeat, visit, person, owner, app))

    def _click(
        self, ts: float, visit: Visit, person: Person, owner: Person, app: str, variant: str
    ) -> str | None:
        rng = self.rng
        ip, net = self.people.network(owner, ts)
        if owner.vpn is not None and not variant:
            variant = "vpn"
        elif net == "WIFI" and ip != owner.home and owner.vpn is None and not variant:
            variant = "venue"
        device = owner.device
        headers = {"accept-language": device.accept_language(app), "referer": ""}
        headers.update(device.hints(app))
        label = Label(False, ORGANIC, person.actor, variant)
        return self.world.click(
            ts,
            visit.sharer.campaign,
            visit.sharer.referrer,
            ip,
            device.ua(app, net),
            headers,
            owner.visitor(app, rng),
            label,
        )

    def _own_check(self, sharer: Sharer, ts: float) -> None:
        visit = Visit(sharer, FRIEND, WECHAT, False, sharer.person)
        self._click(ts, visit, sharer.person, sharer.person, WECHAT, "own_link")

    def _reopen(self, pending: Pending, owner: Person, converts: bool, ts: float) -> None:
        variant = "viral" if pending.visit.viral else "reopen"
        click_id = self._click(ts, pending.visit, pending.person, owner, BROWSER, variant)
        if click_id is not None and converts:
            pending.click_id = click_id
            pending.variant = pending.variant or "reopen"
            self._schedule_conversion(pending, ts)

    def _repeat(self, visit: Visit, person: Person, owner: Person, app: str, ts: float) -> None:
        self._click(ts, visit, person, owner, app, "viral" if visit.viral else "repeat")

    def _schedule_conversion(self, pending: Pending, ts: float) -> None:
        rng = self.rng
        if rng.random() < 0.94:
            delay = 8.0 + rng.lognormvariate(log(70.0), 0.8)
        else:
            delay = rng.lognormvariate(log(2700.0), 1.0)
        if ts + delay < pending.visit.sharer.campaign.end:
            self.world.at(ts + delay, partial(self._convert, pending))

    def _convert(self, pending: Pending, ts: float) -> None:
        person, campaign = pending.person, pending.visit.sharer.campaign
        if person.joined_campaign(campaign.index):
            return
        label = Label(False, ORGANIC, person.actor, pending.variant)
        user = self.world.convert(ts, campaign, pending.click_id, person.user, label)
        if user is None:
            return
        person.user = user
        person.joined |= 1 << campaign.index
        self._remember(person)
        if len(self.members) < RETURNING_POOL:
            self.members.append(person)
        else:
            self.members[self.rng.randrange(RETURNING_POOL)] = person
        rng = self.rng
        share = SHARE_PROBABILITY * _SHARE_FACTOR[pending.visit.relation]
        if rng.random() < share:
            roll = rng.random()
            klass = (
                VIRAL
                if roll < PARTICIPANT_VIRAL
                else (ACTIVE if roll < PARTICIPANT_ACTIVE else ORDINARY)
            )
            self_referrer = rng.random() < self.self_referral_rate
            start = self.calendar.after(ts, rng.lognormvariate(log(0.3), 1.2))
            if start < campaign.end:
                self.world.at(
                    start,
                    partial(self._start, campaign, person, klass, False, ts, self_referrer),
                )
