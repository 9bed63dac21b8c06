"""Strict-Transport-Security over https, on every kind of answer: the click path's own (its
redirects and pages, built outside Flask), Flask's public pages, the console and the API; never
over plain http, where a browser ignores it and it would only suggest a protection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import BROWSER, make_app, services_of
from tests.test_challenge import WECHAT, make_campaign

HSTS = "max-age=31536000"
SCHEMES = [("https://localhost", HSTS), ("http://localhost", None)]


def answers(client: FlaskClient, admin: dict[str, str], base_url: str) -> dict[str, Any]:
    """One answer of each kind, asked for at ``base_url``."""
    token = make_campaign(client, admin, challenge_at=0.9, deny_credit_at=0.8)
    asked = {
        "click redirect": client.get(f"/s/{token}", headers=BROWSER, base_url=base_url),
        "fallback page": client.get(
            f"/s/{token}", headers={**BROWSER, "User-Agent": WECHAT}, base_url=base_url
        ),
        "challenge answer page": client.post(
            f"/s/{token}/go", data={"c": "forged"}, headers=BROWSER, base_url=base_url
        ),
        "console page": client.get("/console/login", base_url=base_url),
        "API response": client.get("/api/v1/campaigns", headers=admin, base_url=base_url),
        "API error": client.get("/api/v1/campaigns", base_url=base_url),
    }
    assert asked["click redirect"].status_code == 302
    assert asked["fallback page"].status_code == 200
    assert asked["challenge answer page"].status_code == 200
    assert asked["console page"].status_code == 200
    assert asked["API response"].status_code == 200
    assert asked["API error"].status_code == 401
    return asked


@pytest.mark.parametrize(("base_url", "expected"), SCHEMES)
def test_hsts_over_https_only(
    client: FlaskClient, admin: dict[str, str], base_url: str, expected: str | None
) -> None:
    for what, response in answers(client, admin, base_url).items():
        assert response.headers.get("Strict-Transport-Security") == expected, (base_url, what)


def test_hsts_when_a_trusted_proxy_says_https(tmp_path: Path, store_url: str) -> None:
    """Behind a TLS-terminating proxy the request arrives over http: X-Forwarded-Proto from a
    trusted proxy (ProxyFix, outside the click path) decides."""
    app: Flask = make_app(tmp_path / "proxied", store_url, REFGATE_TRUSTED_PROXIES="1")
    try:
        client = app.test_client()
        forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"}
        page = client.get("/console/login", headers=forwarded)
        assert page.headers.get("Strict-Transport-Security") == HSTS
        missing = client.get("/s/not-a-token", headers={**BROWSER, **forwarded})
        assert missing.status_code == 404
        assert missing.headers.get("Strict-Transport-Security") == HSTS
        plain = client.get("/s/not-a-token", headers=BROWSER)
        assert "Strict-Transport-Security" not in plain.headers
    finally:
        services_of(app).close()
