"""Raising flags from recorded clicks, off the click path (a periodic job, and replay).

It reads each campaign's event stream from where it stopped, keeps a running tally per referrer
in the store, and raises referrer flags (detectors.flagging) and flags on lone, very suspicious
clicks. Runs are incremental and safe to repeat: the cursor moves only after the tallies are
written, and flags are one per subject.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from detectors.features import AUTOMATED, POSTED, external_referer
from detectors.flagging import (
    AUTOMATED_MIN,
    CLICK_FLAG_SCORE,
    ReferrerFinding,
    ReferrerTally,
    automated_finding,
    posted_share,
    referrer_finding,
)
from detectors.review import fed_back
from gateway.campaigns import Campaign, CampaignService
from gateway.flags import FlagCandidate, FlagService, flag_id_for
from gateway.jobs import FlaggingJob
from gateway.referrer_names import ReferrerNames
from gateway.referrer_risk import ReferrerRisk
from gateway.store import keys
from gateway.store.follow import STREAM_BATCH, follow
from gateway.store.scripts import script

BATCH = STREAM_BATCH
#: Stream reads handed over at once: a referrer's tally is read, added to and judged once per
#: hand-over, so a larger one spreads that over more of their clicks (at 2,000 sharers and 500
#: events a read, most sharers had one click per read).
READS = 10
#: Referrers per add_tallies call: one call holds the store for about 1 ms per 200.
TALLY_CHUNK = 200


class Flagger(FlaggingJob):
    #: Where suspicions that raise no flag go (a link posted on public pages), for the click path.
    risk: ReferrerRisk | None = None

    def __init__(self, store: Any, campaigns: CampaignService, flags: FlagService) -> None:
        super().__init__(store, campaigns, flags)
        #: Per campaign, the referrers' external ids met so far (a run reads a few new ones).
        self._referrer_names: dict[int, ReferrerNames] = {}

    def _names(self, campaign_id: int) -> ReferrerNames:
        names = self._referrer_names.get(campaign_id)
        if names is None:
            names = self._referrer_names[campaign_id] = ReferrerNames(self._redis, campaign_id)
        return names

    def run_campaign(self, campaign: Campaign, now: float) -> int:
        ck = keys.campaign_keys(campaign.id)
        raised = follow(
            self._redis,
            ck.events,
            ck.job_cursors,
            "flagger_cursor",
            lambda entries: self._process(campaign, entries, now),
            BATCH,
            legacy=ck.counters,
            reads=READS,
        )
        return raised + self._automated(campaign, now)

    def _automated(self, campaign: Campaign, now: float) -> int:
        """Flag sharers whose links were fetched mostly by scripts (the recorder's counts of
        requests from automation agents, which never reach the event stream). The source is the
        crowd a link draws, not the sharer's own conduct: anyone can point a script at a link,
        so the click path shows the review and scores those clicks on their own."""
        ck = keys.campaign_keys(campaign.id)
        counts = {
            int(k): int(v)
            for k, v in self._redis.hgetall(ck.automated).items()
            if int(v) >= AUTOMATED_MIN
        }
        if not counts:
            return 0
        numbers = sorted(counts)
        known = self._names(campaign.id).names(numbers)
        names = [known[number] for number in numbers]
        pipe = self._redis.pipeline(transaction=False)
        for name in names:
            pipe.hget(ck.referrer_tally(name), "clicks")
        clicks = pipe.execute()
        raised = 0
        for number, name, recorded in zip(numbers, names, clicks, strict=True):
            finding = automated_finding(counts[number], int(recorded or 0))
            if not name or finding is None:
                continue
            flag = self._flags.get(flag_id_for(campaign.id, "referrer", name))
            if flag is not None and AUTOMATED in flag.evidence.get("sources", {}):
                continue  # raised already (the counts only grow); a decision stands
            raised += self._raise_referrer(
                campaign, name, finding, {"automated": counts[number]}, AUTOMATED, now
            )
        return raised

    def _process(self, campaign: Campaign, entries: list[Any], now: float) -> int:
        ck = keys.campaign_keys(campaign.id)
        batch: dict[str, ReferrerTally] = defaultdict(ReferrerTally)
        lone: list[tuple[str, dict[str, Any]]] = []
        for event, referrer in self._names(campaign.id).events(entries):
            if event["outcome"] not in ("redirect", "fallback", "challenge", "blocked"):
                continue
            batch[referrer].add(
                event["score"],
                event["decision"],
                event["reasons"],
                external=external_referer(event.get("referer") or ""),
            )
            if (
                event["score"] >= CLICK_FLAG_SCORE
                and event["decision"] != "block"
                # its sharer is under review already: that flag covers the click
                and not fed_back(event["reasons"])
            ):
                lone.append((referrer, event))
        totals = _add_tallies(self._redis, ck, batch)
        raised = 0
        flagged_referrers = set()
        for referrer, tally in totals.items():
            share = posted_share(tally)
            if share is not None and self.risk is not None:
                self.risk.suspect(campaign.id, referrer, share, POSTED)
            finding = referrer_finding(tally)
            source = "clicks"
            if share is not None:
                finding, source = self._posted(campaign.id, referrer, share, finding), POSTED
            if finding is None:
                continue
            flagged_referrers.add(referrer)
            evidence = {
                "clicks": tally.clicks,
                "suspicious": tally.suspicious,
                "blocked": tally.blocked,
            }
            raised += self._raise_referrer(campaign, referrer, finding, evidence, source, now)
        for referrer, event in lone:
            if referrer in flagged_referrers:
                continue
            _, new = self._flags.raise_flag(
                campaign.id,
                campaign.slug,
                FlagCandidate(
                    kind="click",
                    subject=event["id"],
                    score=event["score"],
                    reasons=tuple(event["reasons"]),
                    evidence={
                        "referrer": referrer,
                        "ts": event["ts"],
                        "prefix": event["prefix"],
                        "decision": event["decision"],
                    },
                ),
                now,
            )
            raised += new
        return raised

    def _raise_referrer(
        self,
        campaign: Campaign,
        referrer: str,
        finding: ReferrerFinding,
        evidence: dict[str, Any],
        source: str,
        now: float,
    ) -> int:
        """Raise (or update) the referrer's flag with a finding; 1 if newly raised."""
        _, new = self._flags.raise_flag(
            campaign.id,
            campaign.slug,
            FlagCandidate(
                kind="referrer",
                subject=referrer,
                score=finding.score,
                reasons=finding.reasons,
                evidence=evidence,
                source=source,
            ),
            now,
        )
        return int(new)

    def _posted(
        self, campaign_id: int, referrer: str, share: float, finding: ReferrerFinding | None
    ) -> ReferrerFinding | None:
        """The finding on the clicks of a link posted on public pages, raised under the source
        "clicks:posted" and at least as high as the sharer's open flag and risk entry. The
        risk hash keeps one entry per sharer and an open flag's entry outranks the suspicion:
        under the plain "clicks" source the click path stopped seeing that the link is posted,
        and the clicks of a scraped link that had got its sharer flagged looked clean again
        (detectors.features reads "clicks:posted" in either state). None when the clicks never
        added up to a flag, or the open flag has the posting already and the clicks no longer
        add up to one."""
        flag = self._flags.get(flag_id_for(campaign_id, "referrer", referrer))
        if flag is None or flag.status != "open":
            flag = None
        elif finding is None and POSTED in flag.evidence.get("sources", {}):
            return None
        if finding is None and flag is None:
            return None
        scores = [f.score for f in (finding, flag) if f is not None]
        if self.risk is not None:
            # The entry keeps the highest score it was written with (a weaker one is not
            # written over it): the posting must be at least as strong to replace it.
            state, held, _ = self.risk.get(campaign_id, referrer)
            if state == "open":
                scores.append(held)
        reasons = finding.reasons if finding is not None else ()
        posted = f"their link is opened from public web pages ({share:.0%} of clicks)"
        return ReferrerFinding(max(scores), (*reasons, posted))


def _add_tallies(
    redis: Any, ck: keys.CampaignKeys, batch: dict[str, ReferrerTally]
) -> dict[str, ReferrerTally]:
    """Add a batch's tallies to the referrers' running ones in the store and return the totals:
    one ``add_tallies.lua`` call per ``TALLY_CHUNK`` referrers."""
    referrers = list(batch)
    totals: dict[str, ReferrerTally] = {}
    for start in range(0, len(referrers), TALLY_CHUNK):
        chunk = referrers[start : start + TALLY_CHUNK]
        args: list[str | int] = []
        for referrer in chunk:
            tally = batch[referrer]
            added = [
                (field, amount)
                for field, amount in (
                    ("clicks", tally.clicks),
                    ("suspicious", tally.suspicious),
                    ("blocked", tally.blocked),
                    ("self", tally.self_clicks),
                    ("external", tally.external),
                    ("datacenter", tally.datacenter),
                    *((f"d:{name}", count) for name, count in tally.detectors.items()),
                )
                if amount
            ]
            args.append(len(added))
            for field, amount in added:
                args += (field, amount)
        replies = script("add_tallies")(redis, [ck.referrer_tally(r) for r in chunk], args)
        for referrer, reply in zip(chunk, replies, strict=True):
            totals[referrer] = _tally(dict(zip(reply[::2], reply[1::2], strict=True)))
    return totals


def _tally(stored: dict[bytes, bytes]) -> ReferrerTally:
    """A referrer's running tally as kept in its hash."""
    raw = {k.decode(): int(v) for k, v in stored.items()}
    return ReferrerTally(
        clicks=raw.get("clicks", 0),
        suspicious=raw.get("suspicious", 0),
        blocked=raw.get("blocked", 0),
        self_clicks=raw.get("self", 0),
        external=raw.get("external", 0),
        datacenter=raw.get("datacenter", 0),
        detectors=Counter({k[2:]: v for k, v in raw.items() if k.startswith("d:")}),
    )
