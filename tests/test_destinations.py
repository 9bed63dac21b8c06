"""Campaign destinations: normalised once, never an open redirect."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from flask.testing import FlaskClient

from gateway.destinations import InvalidDestination, normalise_destination
from tests.conftest import BROWSER, corpus

PAYLOAD_FILES = ("Open-Redirect-payloads.txt", "openredirects.txt", "open_redirect_wordlist.txt")


def payloads() -> list[str]:
    found: list[str] = []
    for name in PAYLOAD_FILES:
        for line in corpus("open-redirect-payloads", name).read_text(errors="replace").splitlines():
            if line.strip() and line not in found:
                found.append(line)
    return found


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://Example.COM", "https://example.com/"),
        ("HTTPS://shop.example.com:443/a?b=1#c", "https://shop.example.com/a?b=1#c"),
        ("http://shop.example.com:8080/x", "http://shop.example.com:8080/x"),
        ("https://例え.テスト/パス", "https://xn--r8jz45g.xn--zckzah/%E3%83%91%E3%82%B9"),
        ("https://shop。example。com/", "https://shop.example.com/"),
        ("https://shop.example.com.//evil.example", "https://shop.example.com/evil.example"),
        ("  https://shop.example.com/  ", "https://shop.example.com/"),
    ],
)
def test_normalises(raw: str, expected: str) -> None:
    assert normalise_destination(raw).url == expected


@pytest.mark.parametrize(
    "raw",
    [
        "javascript:alert(1)",
        "data:text/html,hi",
        "//evil.example/",
        "/relative",
        "ftp://files.example.com/",
        "https://user:pw@shop.example.com/",
        "https://shop.example.com@evil.example/",
        "https://127.0.0.1/",
        "https://2130706433/",
        "https://0x7f.0.0.1/",
        "https://0177.0.0.1/",
        "https://[::ffff:127.0.0.1]/",
        "https://[::1]/",
        "https://evil%2eexample/",
        "https://shop.example.com\\@evil.example/",
        "https://shop.example.com/\tx",
        "https://localhost/",
        "https://exa mple.com/",
        "https://shop.example.com:99999/",
        "https://-bad-.example.com/",
        "http:/evil.example",
        "",
        "https://" + "a" * 2000 + ".com/",
    ],
)
def test_rejects(raw: str) -> None:
    with pytest.raises(InvalidDestination):
        normalise_destination(raw)


def test_non_string_is_rejected() -> None:
    with pytest.raises(InvalidDestination):
        normalise_destination(["https://example.com"])


@pytest.mark.parametrize(
    "raw",
    [
        "https://shop.example.com/landing?rg_click=1.F3ABNl1F5Dh2Qzm4",
        "https://shop.example.com/landing?utm_source=wx&rg_click=&x=1#signup",
        "https://shop.example.com/landing?rg%5Fclick=1.F3ABNl1F5Dh2Qzm4",
    ],
)
def test_a_destination_carrying_rg_click_is_refused(raw: str) -> None:
    # Copied from the address bar after a test click, it would send every click to the landing
    # page with a stale rg_click before its own, and the landing app would report the stale one.
    with pytest.raises(InvalidDestination, match="rg_click"):
        normalise_destination(raw)
    for fine in ("https://shop.example.com/?my_rg_click=1", "https://shop.example.com/#rg_click=1"):
        assert normalise_destination(fine).url == fine


def test_the_api_refuses_a_destination_carrying_rg_click(
    client: FlaskClient, admin: dict[str, str]
) -> None:
    stale = "https://shop.example.com/landing?rg_click=1.F3ABNl1F5Dh2Qzm4"
    body = {"slug": "tea", "name": "Tea", "destination_url": stale}
    created = client.post("/api/v1/campaigns", json=body, headers=admin)
    assert created.status_code == 400
    assert created.json["fields"] == {
        "destination_url": "must not carry rg_click: refgate adds each click's own"
    }


def test_allow_list_limits_hosts() -> None:
    allowed = ("example.com",)
    assert normalise_destination("https://shop.example.com/", allowed).host == "shop.example.com"
    with pytest.raises(InvalidDestination):
        normalise_destination("https://example.com.evil.net/", allowed)
    with pytest.raises(InvalidDestination):
        normalise_destination("https://notexample.com/", allowed)


def _host_of(location: str) -> str:
    host = urlsplit(location).hostname
    assert host is not None
    return host


def _assert_safe_location(location: str, stored: dict[str, Any]) -> None:
    # The Location is the stored destination plus our parameter, and browsers see that host only.
    assert location.startswith(stored["destination_url"].split("#")[0])
    assert "@" not in urlsplit(location).netloc
    assert "\\" not in location
    host = _host_of(location)
    assert host == stored["destination_host"]
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
        ipaddress.ip_address(host)
    assert unquote(host) == host


def test_every_open_redirect_payload_is_rejected_or_pinned(
    client: FlaskClient, admin: dict[str, str]
) -> None:
    accepted = rejected = 0
    for number, payload in enumerate(payloads()):
        slug = f"payload-{number}"
        response = client.post(
            "/api/v1/campaigns",
            json={"slug": slug, "name": "p", "destination_url": payload},
            headers=admin,
        )
        if response.status_code == 400:
            assert "destination_url" in response.json["fields"], payload
            rejected += 1
            continue
        assert response.status_code == 201, (payload, response.json)
        accepted += 1
        stored = response.json
        minted = client.post(
            f"/api/v1/campaigns/{slug}/links", json={"referrer": "r1"}, headers=admin
        )
        token = minted.json["token"]
        click = client.get(f"/s/{token}?next={payload}&url={payload}", headers=BROWSER)
        assert click.status_code == 302
        _assert_safe_location(click.headers["Location"], stored)
    assert rejected > 200 and accepted > 0


def test_with_an_allow_list_no_payload_reaches_another_host() -> None:
    for payload in payloads():
        try:
            destination = normalise_destination(payload, ("www.whitelisteddomain.tld",))
        except InvalidDestination:
            continue
        assert destination.host == "www.whitelisteddomain.tld" or destination.host.endswith(
            ".www.whitelisteddomain.tld"
        ), payload
