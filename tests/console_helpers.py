"""Shared by the console tests (test client and browser): staff users and a reviewable flag."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from gateway.flags import Flag, FlagCandidate
from gateway.services import Services
from tests.test_conversions import record_click

PASSWORD = "correct horse battery"
ROLES = ("admin", "marketing", "risk")


def email(role: str) -> str:
    return f"{role}@staff.example.com"


def add_staff(services: Services) -> None:
    for role in ROLES:
        services.users.add(email(role), role, PASSWORD)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def token(client: FlaskClient) -> str:
    """A CSRF token of the client's session (from the login page, or once signed in, from the
    settings page every role may open)."""
    page = client.get("/console/login")
    if page.status_code == 302:
        page = client.get("/console/settings")
    return csrf_of(page.text)


def login(client: FlaskClient, role: str, password: str = PASSWORD, **environ: Any) -> Any:
    page = client.get("/console/login", environ_base=environ)
    return client.post(
        "/console/login",
        data={"email": email(role), "password": password, "csrf_token": csrf_of(page.text)},
        environ_base=environ,
        headers={"Accept-Language": "en"},
    )


def as_role(app: Flask, role: str) -> FlaskClient:
    """A test client signed in as the staff user of ``role`` (add_staff), or no one."""
    client = app.test_client()
    if role != "anonymous":
        response = login(client, role)
        assert response.status_code == 302, response.text
    return client


def flagged_campaign(services: Services, slug: str = "tea") -> tuple[dict[str, Any], Flag]:
    """A campaign with two converted referrals of ``farmer`` and an open referrer flag on them
    (which holds both rewards)."""
    campaign = services.campaigns.create(
        {
            "slug": slug,
            "name": "Tea",
            "destination_url": "https://shop.example.com/",
            "reward": {"amount": 1, "budget_total": 100},
        },
        "test",
    )
    doc = {"id": campaign.id, "slug": slug}
    for user in ("p1", "p2"):
        services.conversions.convert(record_click(services, doc, "farmer"), user)
    flag, _ = services.flags.raise_flag(
        campaign.id,
        slug,
        FlagCandidate("referrer", "farmer", 0.9, ("8 of 8 clicks suspicious (network ×8)",)),
        1.0,
    )
    return doc, flag
