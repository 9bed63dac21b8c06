"""GET /s/<token>: redirect, pages for bad links, previews, recording each click once."""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.events import RECORD_FIELDS
from gateway.links import ShareLink
from gateway.referrer_names import ReferrerNames
from gateway.services import Services
from gateway.store import keys
from tests.conftest import BROWSER, BROWSER_EN, make_app, services_of


def stats(client: FlaskClient, admin: dict[str, str], services: Services) -> dict[str, Any]:
    services.recorder.flush()
    response = client.get("/api/v1/campaigns/milk-tea/stats", headers=admin)
    assert response.status_code == 200
    data: dict[str, Any] = response.json  # type: ignore[assignment]
    return data


def events(services: Services, campaign_id: int) -> list[dict[str, Any]]:
    services.recorder.flush()
    entries = services.store.main.xrange(keys.campaign_keys(campaign_id).events)
    names = ReferrerNames(services.store.main, campaign_id)
    return [{**event, "referrer": referrer} for event, referrer in names.events(entries)]


def test_click_redirects_to_the_destination_with_a_click_id(
    client: FlaskClient, link: dict[str, Any], campaign: dict[str, Any]
) -> None:
    response = client.get(f"/s/{link['token']}", headers=BROWSER)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("https://shop.example.com/landing?src=share&rg_click=")
    click_id = parse_qs(urlsplit(location).query)["rg_click"][0]
    assert click_id.startswith(f"{campaign['id']:x}.")
    assert response.headers["Cache-Control"] == "no-store"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("rg_vid=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" in cookie  # the public URL is https


def test_click_is_recorded_once_with_hashed_ip(
    client: FlaskClient,
    link: dict[str, Any],
    campaign: dict[str, Any],
    services: Services,
    admin: dict[str, str],
) -> None:
    client.get(f"/s/{link['token']}", headers=BROWSER, environ_base={"REMOTE_ADDR": "203.0.113.77"})
    recorded = events(services, campaign["id"])
    assert len(recorded) == 1
    event = recorded[0]
    assert event["referrer"] == "alice"
    assert event["campaign"] == "milk-tea"
    assert event["prefix"] == "203.0.113.0/24"
    assert "203.0.113.77" not in json.dumps(event)
    assert len(event["ip_hash"]) == 20
    assert event["decision"] == "allow" and event["outcome"] == "redirect"
    assert event["ua"] == BROWSER["User-Agent"]
    assert event["accept_language"] == "zh-CN,zh;q=0.9"
    record = json.loads(
        services.store.main.get(keys.campaign_keys(campaign["id"]).click(event["id"]))
    )
    # The record keeps what conversions and the tree watch read; the stream has the rest.
    assert record == {k: event[k] for k in RECORD_FIELDS}
    assert "features" in event and "features" not in record
    assert services.store.main.ttl(keys.campaign_keys(campaign["id"]).click(event["id"])) > 86400
    assert stats(client, admin, services)["clicks"] == 1


def test_recording_the_same_event_twice_counts_once(
    client: FlaskClient,
    link: dict[str, Any],
    campaign: dict[str, Any],
    services: Services,
    admin: dict[str, str],
) -> None:
    client.get(f"/s/{link['token']}", headers=BROWSER)
    event = events(services, campaign["id"])[0]
    from gateway.events import ClickEvent

    replay = ClickEvent(**{k: v for k, v in event.items() if k != "referrer"})
    assert services.recorder.write([replay]) == 0
    assert stats(client, admin, services)["clicks"] == 1
    assert len(events(services, campaign["id"])) == 1


def test_clicks_carry_waiting_events_once_enough_wait(
    client: FlaskClient,
    link: dict[str, Any],
    campaign: dict[str, Any],
    services: Services,
    monkeypatch: Any,
) -> None:
    from gateway.recorder import EventRecorder

    recorder = services.recorder
    monkeypatch.setattr(recorder, "carry_min", 3)
    monkeypatch.setattr(recorder, "flush", lambda: 0)  # the background flusher stands still
    stream = keys.campaign_keys(campaign["id"]).events
    for _ in range(3):
        client.get(f"/s/{link['token']}", headers=BROWSER)
    # Fewer than carry_min were waiting at each click: nothing written yet.
    assert services.store.main.xlen(stream) == 0 and recorder.pending() == 3
    client.get(f"/s/{link['token']}", headers=BROWSER)
    # The fourth click's round trip carried the three, its own event waits.
    assert services.store.main.xlen(stream) == 3 and recorder.pending() == 1
    EventRecorder.flush(recorder)
    assert services.store.main.xlen(stream) == 4 and recorder.pending() == 0


def test_a_batch_counts_each_new_event_once_per_field(
    client: FlaskClient,
    link: dict[str, Any],
    campaign: dict[str, Any],
    services: Services,
    admin: dict[str, str],
) -> None:
    from gateway.events import ClickEvent

    # Fixed visitor ids: unique visitors are a HyperLogLog, and random ids would collide in
    # one of its registers once in about 1,600 runs (an undercount, as HyperLogLog may).
    for n in range(3):
        client.set_cookie("rg_vid", f"{n:022d}")
        client.get(f"/s/{link['token']}", headers=BROWSER)
    recorded = [
        ClickEvent(**{k: v for k, v in event.items() if k != "referrer"})
        for event in events(services, campaign["id"])
    ]
    fresh = [
        dataclasses.replace(
            recorded[0], id=f"{recorded[0].id}-{n}", visitor_id=f"v-batch-{n % 2}", scan=n == 0
        )
        for n in range(4)
    ]
    # Three already recorded (skipped) and four new, two of them from one browser.
    assert services.recorder.write([*recorded, *fresh]) == 4
    counted = stats(client, admin, services)
    assert counted["clicks"] == 7
    assert counted["scan_clicks"] == 1 and counted["link_clicks"] == 6
    assert counted["unique_visitors"] == 5
    assert len(events(services, campaign["id"])) == 7
    assert all(event["referrer"] == "alice" for event in events(services, campaign["id"]))


def test_unique_visitors_follow_the_cookie(
    client: FlaskClient,
    link: dict[str, Any],
    campaign: dict[str, Any],
    services: Services,
    admin: dict[str, str],
) -> None:
    first = client.get(f"/s/{link['token']}", headers=BROWSER)
    assert "rg_vid=" in first.headers["Set-Cookie"]
    second = client.get(f"/s/{link['token']}", headers=BROWSER)  # the client keeps the cookie
    assert "Set-Cookie" not in second.headers
    client.delete_cookie("rg_vid")
    client.get(f"/s/{link['token']}", headers=BROWSER)
    counted = stats(client, admin, services)
    assert counted["clicks"] == 3
    first_visitor, again, other = (
        event["visitor_id"] for event in events(services, campaign["id"])
    )
    assert first_visitor == again != other
    # Unique visitors are a HyperLogLog: two random ids share one of its registers once in
    # 16,384 runs, so the expected count is what the same structure makes of these two ids.
    scratch = "{rg:test}:visitors"
    services.store.main.pfadd(scratch, first_visitor, other)
    assert counted["unique_visitors"] == services.store.main.pfcount(scratch)


def test_scan_tokens_are_counted_as_scans(
    client: FlaskClient, link: dict[str, Any], services: Services, admin: dict[str, str]
) -> None:
    scan_token = link["scan_url"].rsplit("/", 1)[1]
    assert client.get(f"/s/{scan_token}", headers=BROWSER).status_code == 302
    assert client.get(f"/s/{link['token']}", headers=BROWSER).status_code == 302
    counted = stats(client, admin, services)
    assert counted["scan_clicks"] == 1 and counted["link_clicks"] == 1


def test_tampered_token_is_404(client: FlaskClient, link: dict[str, Any]) -> None:
    token = link["token"]
    bad = token[:-1] + ("A" if token[-1] != "A" else "B")
    response = client.get(f"/s/{bad}", headers=BROWSER_EN)
    assert response.status_code == 404
    assert b"doesn't work" in response.data


def test_unknown_campaign_is_404(
    client: FlaskClient, services: Services, campaign: dict[str, Any]
) -> None:
    token = services.codec.encode(ShareLink(campaign["id"] + 100, 1, int(time.time())))
    assert client.get(f"/s/{token}", headers=BROWSER).status_code == 404


def test_expired_link_is_410(
    client: FlaskClient, services: Services, campaign: dict[str, Any], admin: dict[str, str]
) -> None:
    stored = services.campaigns.require("milk-tea")
    old = services.links.mint(stored, "bob", now=time.time() - 31 * 86400)
    response = client.get(f"/s/{old.token}", headers=BROWSER_EN)
    assert response.status_code == 410
    assert b"expired" in response.data
    assert stats(client, admin, services)["outcomes"] == {"expired": 1}


def test_revoked_links_are_410_and_new_links_work(
    client: FlaskClient, link: dict[str, Any], admin: dict[str, str]
) -> None:
    revoke = client.post("/api/v1/campaigns/milk-tea/referrers/alice/revoke", headers=admin)
    assert revoke.status_code == 200
    response = client.get(f"/s/{link['token']}", headers=BROWSER_EN)
    assert response.status_code == 410
    assert b"no longer valid" in response.data
    assert b'<p class="lead">Milk tea</p>' in response.data  # which promotion the link was for
    fresh = client.post(
        "/api/v1/campaigns/milk-tea/links", json={"referrer": "alice"}, headers=admin
    ).json
    assert client.get(f"/s/{fresh['token']}", headers=BROWSER_EN).status_code == 302


def test_revoking_an_unknown_referrer_is_404(
    client: FlaskClient, campaign: dict[str, Any], admin: dict[str, str]
) -> None:
    response = client.post("/api/v1/campaigns/milk-tea/referrers/nobody/revoke", headers=admin)
    assert response.status_code == 404


def test_ended_campaign_is_410_and_paused_is_403(
    client: FlaskClient, link: dict[str, Any], admin: dict[str, str]
) -> None:
    assert (
        client.patch(
            "/api/v1/campaigns/milk-tea", json={"action": "pause"}, headers=admin
        ).status_code
        == 200
    )
    paused = client.get(f"/s/{link['token']}", headers=BROWSER_EN)
    assert paused.status_code == 403 and b"paused" in paused.data
    assert (
        client.patch(
            "/api/v1/campaigns/milk-tea", json={"action": "resume"}, headers=admin
        ).status_code
        == 200
    )
    assert client.get(f"/s/{link['token']}", headers=BROWSER_EN).status_code == 302
    assert (
        client.patch(
            "/api/v1/campaigns/milk-tea", json={"action": "end"}, headers=admin
        ).status_code
        == 200
    )
    ended = client.get(f"/s/{link['token']}", headers=BROWSER_EN)
    assert ended.status_code == 410 and b"ended" in ended.data
    assert b"https://shop.example.com/" in ended.data


def test_campaign_window_in_the_future_is_not_started(
    client: FlaskClient, link: dict[str, Any], admin: dict[str, str]
) -> None:
    response = client.patch(
        "/api/v1/campaigns/milk-tea", json={"starts_at": "2999-01-01T00:00:00Z"}, headers=admin
    )
    assert response.status_code == 200, response.json
    assert client.get(f"/s/{link['token']}", headers=BROWSER).status_code == 403


def test_destination_edits_reach_the_click_path(
    client: FlaskClient, link: dict[str, Any], admin: dict[str, str]
) -> None:
    assert client.get(f"/s/{link['token']}", headers=BROWSER).status_code == 302
    client.patch(
        "/api/v1/campaigns/milk-tea",
        json={"destination_url": "https://new.example.org/x"},
        headers=admin,
    )
    location = client.get(f"/s/{link['token']}", headers=BROWSER).headers["Location"]
    assert location.startswith("https://new.example.org/x?rg_click=")


def test_head_and_link_previews_get_open_graph_and_are_not_clicks(
    client: FlaskClient, link: dict[str, Any], services: Services, admin: dict[str, str]
) -> None:
    head = client.head(f"/s/{link['token']}", headers=BROWSER)
    assert head.status_code == 200
    for agent in (
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "TelegramBot (like TwitterBot)",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "WhatsApp/2.23.20.0",
    ):
        preview = client.get(f"/s/{link['token']}", headers={"User-Agent": agent})
        assert preview.status_code == 200, agent
        assert b'property="og:title" content="Milk tea"' in preview.data
    assert stats(client, admin, services)["clicks"] == 0


def test_a_preview_shows_the_campaign_as_it_is_and_caches_apart_from_people(
    client: FlaskClient, link: dict[str, Any], services: Services, admin: dict[str, str]
) -> None:
    """Link cards are not an advertisement for a paused or ended campaign, caches keep the
    preview apart from people's redirects, and og:url is the public link, never the request's
    Host header or query."""
    crawler = {"User-Agent": "facebookexternalhit/1.1", "Host": "evil.example"}
    preview = client.get(f"/s/{link['token']}?next=https://evil.example/", headers=crawler)
    assert preview.status_code == 200
    assert preview.headers["Vary"] == "User-Agent, Accept-Language"
    assert f'property="og:url" content="{link["url"]}"'.encode() in preview.data
    assert b"evil.example" not in preview.data
    services.campaigns.recent_seconds = 0.0  # rather than wait the seconds a view may be old
    client.patch("/api/v1/campaigns/milk-tea", json={"action": "pause"}, headers=admin)
    for headers in (crawler, {"User-Agent": "WhatsApp/2.23.20.0"}):
        paused = client.get(f"/s/{link['token']}", headers=headers)
        assert paused.status_code == 403 and paused.headers["Cache-Control"] == "no-store"
    assert client.head(f"/s/{link['token']}", headers=BROWSER).status_code == 403
    client.patch("/api/v1/campaigns/milk-tea", json={"action": "end"}, headers=admin)
    assert client.get(f"/s/{link['token']}", headers=crawler).status_code == 410
    assert stats(client, admin, services)["clicks"] == 0


_people = itertools.count(1)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    query=st.dictionaries(
        st.sampled_from(
            [
                "next",
                "url",
                "redirect",
                "redirect_uri",
                "returnTo",
                "continue",
                "dest",
                "rg_click",
                "q",
            ]
        ),
        st.sampled_from(
            [
                "https://evil.example/",
                "//evil.example",
                "javascript:alert(1)",
                "https:evil.example",
                "%2F%2Fevil.example",
            ]
        ),
        max_size=4,
    ),
    header=st.sampled_from(["Referer", "X-Forwarded-Host", "Host", "X-Original-URL", "Forwarded"]),
)
def test_no_request_parameter_changes_the_location(
    client: FlaskClient, link: dict[str, Any], query: dict[str, str], header: str
) -> None:
    number = next(_people)
    address = f"10.{number // 65536 % 256}.{number // 256 % 256}.{number % 256}"
    # A new person each time (a fresh cookie jar: the Host header varies the cookie's domain):
    # sixty clicks a minute from one browser would (rightly) be a flood.
    response = client.application.test_client().get(
        f"/s/{link['token']}",
        query_string=query,
        headers={**BROWSER, header: "evil.example"},
        environ_base={"REMOTE_ADDR": address},
    )
    assert response.status_code == 302
    location = response.headers["Location"]
    prefix, _, click_id = location.partition("&rg_click=")
    assert prefix == "https://shop.example.com/landing?src=share"
    assert "evil" not in location and "/" not in click_id


def test_click_records_and_events_are_kept_as_long_as_configured(
    tmp_path: Path, store_url: str
) -> None:
    app = make_app(
        tmp_path / "data",
        store_url,
        REFGATE_ATTRIBUTION_DAYS="2",
        REFGATE_EVENT_RETENTION_DAYS="14",
    )
    services = services_of(app)
    try:
        found = services.campaigns.create(
            {"slug": "short", "name": "Short", "destination_url": "https://shop.example.com/"},
            actor="test",
        )
        token = services.links.mint(found, "alice").token
        client = app.test_client()
        assert client.get(f"/s/{token}", headers=BROWSER).status_code == 302
        (event,) = events(services, found.id)
        ttl = services.store.main.ttl(keys.campaign_keys(found.id).click(event["id"]))
        assert 86400 < ttl <= 2 * 86400
        # The stream is trimmed of entries older than 14 days (MINID, in milliseconds).
        oldest_kept = int(services.recorder.stream_minid()) / 1000
        assert abs(oldest_kept - (time.time() - 14 * 86400)) < 60
    finally:
        services.close()


def test_a_link_copied_with_something_extra_still_gets_somewhere(
    client: FlaskClient, link: dict[str, Any]
) -> None:
    """A trailing slash (chat apps add them) leads to the link; any other extra path gets the
    page a broken link gets, not werkzeug's bare 404."""
    slashed = client.get(f"/s/{link['token']}/", headers=BROWSER)
    assert slashed.status_code == 301 and slashed.headers["Location"] == f"/s/{link['token']}"
    assert client.get(f"/c/{link['code']}/").headers["Location"] == f"/c/{link['code']}"
    broken = client.get("/s/junk", headers=BROWSER).data
    for path in (f"/s/{link['token']}/extra/more", "/c/a/b"):
        response = client.get(path, headers=BROWSER)
        assert response.status_code == 404, path
        assert response.data == broken, path


def test_a_line_break_in_a_slashed_link_gets_the_broken_link_page_not_an_error(
    client: FlaskClient, link: dict[str, Any]
) -> None:
    """The trailing slash's redirect repeated the path in Location: a path with a line break
    (an attempt at a second header) made werkzeug refuse the header, a 500 and a traceback."""
    broken = client.get("/s/junk", headers=BROWSER).data
    for path in (
        "/s/abc%0d%0aSet-Cookie:%20rg_vid=x/",
        "/c/abc%0aX-Injected:%201/",
        "/s/a%E2%80%A8b/",
        f"/s/{link['token']}%0d/",
    ):
        response = client.get(path, headers=BROWSER)
        assert response.status_code == 404, path
        assert response.data == broken, path
        assert "Location" not in response.headers and "X-Injected" not in response.headers
