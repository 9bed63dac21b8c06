"""Demo data: a campaign, an admin API key and a few share links, printed with what to try."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from gateway.apikeys import Role
from gateway.errors import ApiError
from gateway.services import Services
from gateway.users import UserError

DEMO_SLUG = "milk-tea"
DEMO_KEY_FILE = "demo-api-key"
DEMO_STAFF_EMAIL = "admin@demo.refgate.example"
DEMO_PASSWORD_FILE = "demo-console-password"  # noqa: S105 - a file name, not a password


@dataclass
class DemoData:
    public_url: str
    api_key: str
    slug: str
    console_password: str
    links: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        first = next(iter(self.links.values()))
        lines = [
            "",
            "refgate demo",
            f"  admin API key:  {self.api_key}",
            f"  campaign:       {self.slug}",
            f"  staff console:  {self.public_url}/console/login",
            f"                  {DEMO_STAFF_EMAIL} / {self.console_password} (admin)",
        ]
        lines += [f"  link of {name + ':':<8} {url}" for name, url in self.links.items()]
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


def seed(services: Services) -> DemoData:
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
    return DemoData(services.settings.public_url, api_key, campaign.slug, password, links)


def _demo_staff(services: Services) -> str:
    """An admin account for the console, its password kept beside the demo API key."""
    path = services.settings.data_dir / DEMO_PASSWORD_FILE
    saved = path.read_text().strip() if path.exists() else ""
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
