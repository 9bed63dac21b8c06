"""The /api/v1 campaigns and links API: validation, conflicts, roles."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from gateway.flags import FlagCandidate, flag_id_for
from tests.conftest import bearer

VALID = {
    "slug": "spring-tea",
    "name": "Spring tea",
    "destination_url": "https://shop.example.com/landing",
}


def create(client: FlaskClient, headers: dict[str, str], **changes: Any) -> Any:
    body = {**VALID, **changes}
    return client.post(
        "/api/v1/campaigns", json={k: v for k, v in body.items() if v is not None}, headers=headers
    )


def test_create_and_read_back(client: FlaskClient, admin: dict[str, str]) -> None:
    response = create(
        client,
        admin,
        starts_at="2026-02-01T00:00:00+08:00",
        ends_at="2026-02-20T00:00:00+08:00",
        link_ttl_days=7,
        reward={"amount": 2, "budget_total": 1000, "max_per_referrer": 10},
    )
    assert response.status_code == 201, response.json
    assert response.headers["Location"] == "/api/v1/campaigns/spring-tea"
    got = client.get("/api/v1/campaigns/spring-tea", headers=admin).json
    assert got["destination_url"] == "https://shop.example.com/landing"
    assert got["link_ttl_days"] == 7
    assert got["reward"] == {
        "amount": 2,
        "budget_total": 1000,
        "max_per_referrer": 10,
        "max_per_day": None,
    }
    assert got["status"] == "active" and got["state"] == "ended"
    listed = client.get("/api/v1/campaigns", headers=admin).json["campaigns"]
    assert [c["slug"] for c in listed] == ["spring-tea"]


def test_minting_on_a_campaign_past_its_ends_at_says_which_end_and_how_to_reopen(
    client: FlaskClient, admin: dict[str, str]
) -> None:
    # A campaign created with dates already past (README's example, copied a year later) is
    # created ended; minting is where its creator learns it, so the refusal names ends_at.
    ends = "2026-02-20T00:00:00+08:00"
    assert create(client, admin, ends_at=ends).json["state"] == "ended"
    links = "/api/v1/campaigns/spring-tea/links"
    refused = client.post(links, json={"referrer": "u42"}, headers=admin)
    assert refused.status_code == 409 and refused.json["error"] == "campaign_ended"
    assert f"ended at its ends_at, {ends}" in refused.json["message"]
    assert "PATCH a later one" in refused.json["message"]
    later = {"ends_at": "2099-01-01T00:00:00Z"}
    assert (
        client.patch("/api/v1/campaigns/spring-tea", json=later, headers=admin).status_code == 200
    )
    assert client.post(links, json={"referrer": "u42"}, headers=admin).status_code == 201
    ended = {"action": "end"}
    assert (
        client.patch("/api/v1/campaigns/spring-tea", json=ended, headers=admin).status_code == 200
    )
    again = client.post(links, json={"referrer": "u42"}, headers=admin)
    assert again.status_code == 409
    assert again.json["message"] == "the campaign was ended; no new links"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"slug": "Bad Slug"}, "slug"),
        ({"slug": None}, "slug"),
        ({"slug": "-x"}, "slug"),
        ({"name": ""}, "name"),
        ({"name": None}, "name"),
        ({"destination_url": "https://10.0.0.1/"}, "destination_url"),
        ({"destination_url": "https://a@b.example.com/"}, "destination_url"),
        ({"destination_url": 42}, "destination_url"),
        ({"link_ttl_days": 0}, "link_ttl_days"),
        ({"link_ttl_days": "soon"}, "link_ttl_days"),
        ({"starts_at": "2026-02-01T00:00:00"}, "starts_at"),
        ({"starts_at": "yesterday"}, "starts_at"),
        ({"reward": {"amount": 0, "budget_total": 10}}, "reward.amount"),
        ({"reward": {"amount": 1}}, "reward.budget_total"),
        ({"reward": {"amount": 1, "budget_total": -5}}, "reward.budget_total"),
        ({"reward": {"amount": 1, "budget_total": 5, "bonus": 1}}, "reward.bonus"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_validation_errors_name_the_field(
    client: FlaskClient, admin: dict[str, str], changes: dict[str, Any], field: str
) -> None:
    response = create(client, admin, **changes)
    assert response.status_code == 400
    assert response.json["error"] == "validation_failed"
    assert field in response.json["fields"], response.json
    assert client.get("/api/v1/campaigns", headers=admin).json["campaigns"] == []


def test_end_before_start_is_refused(client: FlaskClient, admin: dict[str, str]) -> None:
    response = create(
        client, admin, starts_at="2026-02-10T00:00:00Z", ends_at="2026-02-01T00:00:00Z"
    )
    assert response.status_code == 400


def test_body_must_be_a_json_object(client: FlaskClient, admin: dict[str, str]) -> None:
    for body, message in (
        ("not json", "the request body is not JSON: invalid literal"),
        ("", "the request body is not JSON: Input is a zero-length, empty document"),
        ("[1, 2]", "the request body must be a JSON object"),
    ):
        response = client.post(
            "/api/v1/campaigns", data=body, headers={**admin, "Content-Type": "application/json"}
        )
        assert response.status_code == 400
        assert response.json["error"] == "invalid_json"
        assert response.json["message"].startswith(message)
    # Valid JSON sent as text: the message says what is missing.
    as_text = client.post(
        "/api/v1/campaigns",
        data='{"slug": "x"}',
        headers={**admin, "Content-Type": "text/plain"},
    )
    assert as_text.status_code == 400
    assert as_text.json["message"] == (
        "the request body must be a JSON object, sent with Content-Type: application/json"
    )


def test_duplicate_slug_is_409(client: FlaskClient, admin: dict[str, str]) -> None:
    assert create(client, admin).status_code == 201
    again = create(client, admin, name="other")
    assert again.status_code == 409
    assert again.json["fields"] == {"slug": "a campaign with slug 'spring-tea' exists"}


def test_patch_edits_and_lifecycle(client: FlaskClient, admin: dict[str, str]) -> None:
    create(client, admin)
    edited = client.patch(
        "/api/v1/campaigns/spring-tea", json={"name": "New name", "link_ttl_days": 3}, headers=admin
    )
    assert edited.status_code == 200
    assert edited.json["name"] == "New name" and edited.json["version"] == 2
    assert (
        client.patch("/api/v1/campaigns/spring-tea", json={"action": "pause"}, headers=admin).json[
            "status"
        ]
        == "paused"
    )
    assert (
        client.patch("/api/v1/campaigns/spring-tea", json={"action": "end"}, headers=admin).json[
            "status"
        ]
        == "ended"
    )
    again = client.patch("/api/v1/campaigns/spring-tea", json={"action": "resume"}, headers=admin)
    assert again.status_code == 409


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "restart"}, "action"),
        ({"name": None}, "name"),
        ({"destination_url": "javascript:alert(1)"}, "destination_url"),
        ({"slug": "renamed"}, "slug"),
    ],
)
def test_patch_validation(
    client: FlaskClient, admin: dict[str, str], body: dict[str, Any], field: str
) -> None:
    create(client, admin)
    response = client.patch("/api/v1/campaigns/spring-tea", json=body, headers=admin)
    assert response.status_code == 400
    assert field in response.json["fields"]
    assert client.get("/api/v1/campaigns/spring-tea", headers=admin).json["version"] == 1


def test_unknown_campaign_is_404_json(client: FlaskClient, admin: dict[str, str]) -> None:
    for method, path in (
        ("get", "/api/v1/campaigns/nope"),
        ("get", "/api/v1/campaigns/nope/stats"),
    ):
        response = getattr(client, method)(path, headers=admin)
        assert response.status_code == 404
        assert response.json["error"] == "campaign_not_found"
    assert client.get("/api/v1/nothing-here", headers=admin).json["error"] == "not_found"


def test_link_request_validation(client: FlaskClient, admin: dict[str, str]) -> None:
    create(client, admin)
    for body, field in (
        ({}, "referrer"),
        ({"referrer": ""}, "referrer"),
        ({"referrer": "a b"}, "referrer"),
        ({"referrer": "x" * 129}, "referrer"),
        ({"referrer": "ok", "extra": 1}, "extra"),
    ):
        response = client.post("/api/v1/campaigns/spring-tea/links", json=body, headers=admin)
        assert response.status_code == 400, body
        assert field in response.json["fields"]


def test_same_referrer_gets_the_same_numeric_id(
    client: FlaskClient, admin: dict[str, str], app: Flask
) -> None:
    create(client, admin)
    first = client.post(
        "/api/v1/campaigns/spring-tea/links", json={"referrer": "bob"}, headers=admin
    ).json
    second = client.post(
        "/api/v1/campaigns/spring-tea/links", json={"referrer": "bob"}, headers=admin
    ).json
    codec = app.extensions["refgate"].codec
    assert codec.decode(first["token"]).referrer_id == codec.decode(second["token"]).referrer_id


def test_no_links_for_an_ended_campaign(client: FlaskClient, admin: dict[str, str]) -> None:
    create(client, admin)
    client.patch("/api/v1/campaigns/spring-tea", json={"action": "end"}, headers=admin)
    response = client.post(
        "/api/v1/campaigns/spring-tea/links", json={"referrer": "bob"}, headers=admin
    )
    assert response.status_code == 409


# -- authentication and roles --------------------------------------------------------------

#: The flag the role checks use (campaign 1 is the one each test creates first).
FLAG_ID = flag_id_for(1, "referrer", "carol")

#: Every API endpoint and the roles allowed to call it (admin may call everything).
ROLE_MATRIX: list[tuple[str, str, set[str], dict[str, Any] | None]] = [
    ("POST", "/api/v1/campaigns", {"admin", "marketing"}, {**VALID, "slug": "role-check"}),
    ("GET", "/api/v1/campaigns", {"admin", "marketing", "risk"}, None),
    ("GET", "/api/v1/campaigns/spring-tea", {"admin", "marketing", "risk"}, None),
    ("PATCH", "/api/v1/campaigns/spring-tea", {"admin", "marketing"}, {"name": "renamed"}),
    ("GET", "/api/v1/campaigns/spring-tea/stats", {"admin", "marketing", "risk"}, None),
    ("POST", "/api/v1/campaigns/spring-tea/links", {"admin", "marketing"}, {"referrer": "carol"}),
    (
        "POST",
        "/api/v1/campaigns/spring-tea/referrers/carol/revoke",
        {"admin", "marketing", "risk"},
        None,
    ),
    ("GET", "/api/v1/campaigns/spring-tea/platforms", {"admin", "marketing", "risk"}, None),
    (
        "PUT",
        "/api/v1/campaigns/spring-tea/platforms/wechat",
        {"admin", "marketing", "risk"},
        {"status": "blocked", "note": "warning page since 20:00"},
    ),
    (
        "POST",
        "/api/v1/inspect",
        {"admin", "marketing", "risk"},
        {"ua": "Mozilla/5.0 MicroMessenger/8.0", "ip": "203.0.113.9"},
    ),
    ("GET", "/api/v1/campaigns/spring-tea/tree/carol", {"admin", "marketing", "risk"}, None),
    ("GET", "/api/v1/campaigns/spring-tea/ancestors/carol", {"admin", "marketing", "risk"}, None),
    ("GET", "/api/v1/people/carol", {"admin", "marketing", "risk"}, None),
    ("GET", "/api/v1/rewards?campaign=spring-tea", {"admin", "marketing", "risk"}, None),
    ("POST", "/api/v1/conversions", {"admin", "conversion"}, {"click_id": "CLICK", "user": "dan"}),
    ("GET", "/api/v1/flags", {"admin", "risk"}, None),
    ("GET", f"/api/v1/flags/{FLAG_ID}", {"admin", "risk"}, None),
    ("POST", f"/api/v1/flags/{FLAG_ID}/decision", {"admin", "risk"}, {"decision": "legit"}),
    # WEBHOOK and EVENT stand for an endpoint and a failed event the test sets up.
    (
        "POST",
        "/api/v1/webhooks",
        {"admin", "marketing"},
        {"url": "https://hooks.example.com/refgate", "events": ["flag.raised"]},
    ),
    ("GET", "/api/v1/webhooks", {"admin", "marketing"}, None),
    ("GET", "/api/v1/webhooks/WEBHOOK", {"admin", "marketing"}, None),
    ("GET", "/api/v1/webhooks/WEBHOOK/deliveries", {"admin", "marketing"}, None),
    ("POST", "/api/v1/webhooks/WEBHOOK/deliveries/EVENT/redeliver", {"admin", "marketing"}, None),
    ("POST", "/api/v1/webhooks/WEBHOOK/rotate-secret", {"admin", "marketing"}, None),
    ("PATCH", "/api/v1/webhooks/WEBHOOK", {"admin", "marketing"}, {"disabled": False}),
    ("DELETE", "/api/v1/webhooks/WEBHOOK", {"admin", "marketing"}, None),
    (
        "GET",
        "/api/v1/openapi.json",
        {"admin", "marketing", "risk", "conversion", "anonymous"},
        None,
    ),
]


def test_role_matrix_covers_every_api_route(app: Flask) -> None:
    routes = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    covered = set()
    for method, path, _, _ in ROLE_MATRIX:
        adapter = app.url_map.bind("localhost")
        endpoint, _ = adapter.match(path.split("?")[0], method=method)
        rule = next(
            r
            for r in app.url_map.iter_rules()
            if r.endpoint == endpoint and method in (r.methods or ())
        )
        covered.add((method, rule.rule))
    assert routes == covered


@pytest.mark.parametrize("role", ["anonymous", "admin", "marketing", "risk", "conversion"])
def test_every_endpoint_against_every_role(
    client: FlaskClient, admin: dict[str, str], keys: dict[str, str], role: str, app: Flask
) -> None:
    create(client, admin)
    client.post("/api/v1/campaigns/spring-tea/links", json={"referrer": "carol"}, headers=admin)
    services = app.extensions["refgate"]
    services.flags.raise_flag(
        1, "spring-tea", FlagCandidate("referrer", "carol", 0.9, ("test",)), 0.0
    )
    from tests.test_conversions import record_click

    campaign = {"id": 1, "slug": "spring-tea"}
    # A webhook endpoint nothing listens on, whose one event fails at its only attempt.
    hooks = services.webhooks
    hooks.allow_private, hooks.max_attempts = True, 1
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    endpoint, _ = hooks.create(
        {"url": f"http://127.0.0.1:{closed.getsockname()[1]}/", "events": ["conversion.created"]},
        "test",
    )
    services.conversions.convert(record_click(services, campaign, "carol"), "erin")
    hooks.run(time.time())
    closed.close()
    (failed,) = hooks.failed(endpoint.id)
    click = record_click(services, campaign, "carol")
    headers = {} if role == "anonymous" else bearer(keys[role])
    for method, path_, allowed, body in ROLE_MATRIX:
        path = path_.replace("WEBHOOK", endpoint.id).replace("EVENT", failed["event_id"])
        if body is not None and body.get("click_id") == "CLICK":
            body = {**body, "click_id": click, "user": f"dan-{role}"}
        response = client.open(path, method=method, json=body, headers=headers)
        if role in allowed:
            assert response.status_code not in (401, 403), (method, path, role, response.json)
            assert response.status_code < 400, (method, path, role, response.json)
        elif role == "anonymous":
            assert response.status_code == 401, (method, path)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        else:
            assert response.status_code == 403, (method, path, role)
            assert response.json["error"] == "forbidden"


@pytest.mark.parametrize(
    "header",
    [
        "Bearer rgk_not-a-real-key",
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "rgk_without_scheme",
        "Bearer " + "x" * 500,
    ],
)
def test_bad_credentials_are_401(client: FlaskClient, header: str) -> None:
    response = client.get("/api/v1/campaigns", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json["error"] == "unauthorized"


def test_disabled_key_is_401(client: FlaskClient, app: Flask) -> None:
    services = app.extensions["refgate"]
    plaintext, key = services.api_keys.create("temp", "admin")
    assert client.get("/api/v1/campaigns", headers=bearer(plaintext)).status_code == 200
    services.api_keys.disable(key.id)
    assert client.get("/api/v1/campaigns", headers=bearer(plaintext)).status_code == 401
