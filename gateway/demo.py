"""Demo data: a campaign, an admin API key and a few share links, printed with what to try;
and, for the console to show something, traffic: a simulated festival day played into the
campaign through the same code as live clicks (``seed_traffic``)."""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from gateway.apikeys import Role
from gateway.errors import ApiError
from gateway.replay import Replayer, ReplaySummary
from gateway.services import Services
from gateway.store import keys
from gateway.users import UserError

DEMO_SLUG = "milk-tea"
DEMO_KEY_FILE = "demo-api-key"
DEMO_STAFF_EMAIL = "admin@demo.refgate.example"
DEMO_PASSWORD_FILE = "demo-console-password"  # noqa: S105 - a file name, not a password
#: The simulated traffic: a small simulation (attacks are over-represented below scale 200, so
#: every kind of fraud shows up in the review queue), cut some hours after the festival peak.
TRAFFIC_SCALE = 10
TRAFFIC_SEED = 7
HOURS_AFTER_PEAK = 18.0

log = logging.getLogger(__name__)


@dataclass
class DemoData:
    public_url: str
    api_key: str
    slug: str
    console_password: str
    links: dict[str, str] = field(default_factory=dict)

    traffic: ReplaySummary | None = None

    def describe(self) -> str:
        first = next(iter(self.links.values()))
        lines = [
            "",
            "refgate demo",
            f"  admin API key:  {self.api_key}",
            f"  campaign:       {self.slug}",
            f"  staff console:  {self.public_url}/console/login",
            f"                  {DEMO_STAFF_EMAIL} / {self.console_password} (admin)"
            if self.console_password
            else f"                  {DEMO_STAFF_EMAIL} is disabled; to use it again: "
            f"refgate user disable --enable {DEMO_STAFF_EMAIL}",
        ]
        lines += [f"  link of {name + ':':<8} {url}" for name, url in self.links.items()]
        if self.traffic is not None:
            t = self.traffic
            lines += [
                f"  demo traffic:   {t.clicks} clicks and {t.conversions} sign-ups of a simulated"
                f" festival (honest sharers, click farms, bots, rings, sybil chains),",
                f"                  played through the click path; {t.flags} flags to review at"
                f" {self.public_url}/console/flags",
            ]
        lines += [
            "",
            "try:",
            f"  curl -i {first}",
            f"  QR code and share poster: {first}/qr.png  {first}/poster.png",
            f"  curl -s -H 'Authorization: Bearer {self.api_key}' "
            f"{self.public_url}/api/v1/campaigns/{self.slug}/stats",
            f"  API description: {self.public_url}/api/v1/openapi.json",
            "",
        ]
        return "\n".join(lines)


def seed(services: Services, *, traffic: bool = False) -> DemoData:
    api_key = _demo_key(services)
    campaign = services.campaigns.get(DEMO_SLUG)
    if campaign is None:
        try:
            campaign = services.campaigns.create(
                {
                    "slug": DEMO_SLUG,
                    "name": "春节奶茶请客 Spring Festival milk tea",
                    "destination_url": "https://example.com/landing/milk-tea?utm_source=refgate",
                    "link_ttl_days": 30,
                    "reward": {"amount": 1, "budget_total": 1000, "max_per_referrer": 20},
                },
                actor="demo",
            )
        except ApiError:  # created concurrently by another process
            campaign = services.campaigns.require(DEMO_SLUG)
    links = {name: services.links.mint(campaign, name).url for name in ("alice", "bob")}
    password = _demo_staff(services)
    demo = DemoData(services.settings.public_url, api_key, campaign.slug, password, links)
    if traffic:
        demo.traffic = seed_traffic(services)
    return demo


def seed_traffic(services: Services, *, now: float | None = None) -> ReplaySummary | None:
    """Play a simulated festival into the demo campaign, ending a few minutes before ``now``;
    None when the campaign has clicks already (a second start, or someone used the demo).

    Every click goes through the click path (scoring, recording), every sign-up through the
    conversion service (tree, ledger), and the flagger and tree detectors run on the log's
    clock, as in a replay: the charts, the review queue and the referral tree show what the
    engine made of it, not canned rows."""
    campaign = services.campaigns.require(DEMO_SLUG)
    if int(services.store.main.hget(keys.campaign_keys(campaign.id).counters, "clicks") or 0):
        return None
    from gateway.simulate import simulate

    log.info("playing a simulated festival into the demo campaign (once, some seconds)")
    with tempfile.TemporaryDirectory(prefix="refgate-demo-") as tmp:
        simulate(Path(tmp), scale=TRAFFIC_SCALE, seed=TRAFFIC_SEED)
        lines = list(_festival(Path(tmp), time.time() if now is None else now))
    replayer = Replayer(services)
    started = time.perf_counter()
    try:
        for number, line in enumerate(lines, 1):
            replayer.play(number, line)
        replayer.finish()
        services.recorder.flush()
    finally:
        replayer.restore()
    summary = replayer.summary
    summary.seconds = time.perf_counter() - started
    summary.flags = services.flags.open_page([campaign.id], limit=1, offset=0)[1]
    return summary


def _festival(simulation: Path, now: float) -> Iterator[dict[str, Any]]:
    """The demo campaign's events of a simulation up to some hours after its festival peak,
    moved in time so that the last one happened five minutes ago (the peak then shows in the
    console's last-48-hours chart)."""
    summary = orjson.loads((simulation / "summary.json").read_bytes())
    cut = datetime.fromisoformat(summary["peak"]["from_local"]).timestamp()
    cut += HOURS_AFTER_PEAK * 3600
    with open(simulation / "clicks.jsonl", "rb") as fh:
        events = [e for e in map(orjson.loads, fh) if e["campaign"] == DEMO_SLUG and e["ts"] <= cut]
    shift = now - 300.0 - events[-1]["ts"]
    for event in events:
        event["ts"] = round(event["ts"] + shift, 3)
        yield event


def _demo_staff(services: Services) -> str:
    """An admin account for the console, its password kept beside the demo API key."""
    path = services.settings.data_dir / DEMO_PASSWORD_FILE
    saved = path.read_text().strip() if path.exists() else ""
    existing = services.users.get(DEMO_STAFF_EMAIL)
    if existing is not None and existing.disabled:
        # An operator disabled it: left alone, and said so (a printed password that cannot
        # log in would only mislead).
        return ""
    if saved and services.users.verify(DEMO_STAFF_EMAIL, saved) is not None:
        return saved
    password = secrets.token_urlsafe(12)
    if services.users.get(DEMO_STAFF_EMAIL) is None:
        try:
            services.users.add(DEMO_STAFF_EMAIL, "admin", password)
        except UserError:  # added concurrently by another process: take over its password
            services.users.reset_password(DEMO_STAFF_EMAIL, password)
    else:
        services.users.reset_password(DEMO_STAFF_EMAIL, password)
    _write_private(path, password)
    return password


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def _demo_key(services: Services) -> str:
    path = services.settings.data_dir / DEMO_KEY_FILE
    if path.exists():
        saved = path.read_text().strip()
        if services.api_keys.authenticate(saved) is not None:
            return saved
    plaintext, _ = services.api_keys.create("demo", Role.ADMIN)
    _write_private(path, plaintext)
    return plaintext
