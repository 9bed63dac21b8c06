"""The console's webhook pages: the list, registering (errors in the form, the secret once, a
reload refused), disabling, enabling, rotating, deleting, the delivery log, roles, CSRF, the
audit log and the Chinese page."""

from __future__ import annotations

import re
import time

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from gateway.services import Services
from tests.console_helpers import flagged_campaign, token
from tests.test_console import EN, as_role, field_errors, staff  # noqa: F401  (a fixture)
from tests.test_console_messages import HAN, ZH
from tests.test_webhooks import ALL_EVENTS, Receiver, receiver  # noqa: F401  (a fixture)

pytestmark = pytest.mark.usefixtures("staff")

URL = "https://hooks.example.com/refgate"


def form_of(html: str, action: str) -> dict[str, str]:
    """The hidden fields of the page's form posting to ``action`` (its CSRF token, form id)."""
    form = re.search(
        rf'<form method="post" action="{re.escape(action)}"[^>]*>(.*?)</form>', html, re.S
    )
    assert form, f"no form for {action}"
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form.group(1)))


def register(client: FlaskClient, **fields: object) -> tuple[TestResponse, dict[str, object]]:
    """Open the list page and send its form with ``fields``; the response and what was sent."""
    page = client.get("/console/webhooks", headers=EN)
    assert page.status_code == 200
    data: dict[str, object] = {
        **form_of(page.text, "/console/webhooks"),
        "url": URL,
        "events": ["conversion.created", "flag.raised"],
        "campaigns": "",
        "description": "CRM",
        **fields,
    }
    return client.post("/console/webhooks", data=data, headers=EN), data


def shown_secret(html: str) -> str:
    found = re.search(r'<code id="new-secret">(whsec_[^<]+)</code>', html)
    assert found, "no secret on the page"
    return found.group(1)


def test_marketing_registers_an_endpoint_and_sees_its_secret_once(
    app: Flask, services: Services
) -> None:
    client = as_role(app, "marketing")
    assert 'href="/console/webhooks"' in client.get("/console/campaigns", headers=EN).text
    empty = client.get("/console/webhooks", headers=EN).text
    assert "No endpoints yet." in empty
    assert all(f'value="{event}"' in empty for event in ALL_EVENTS)
    created, sent = register(client, campaigns="tea", description="CRM of the tea shop")
    assert created.status_code == 400  # no campaign tea yet
    flagged_campaign(services)
    created, sent = register(client, campaigns="tea", description="CRM of the tea shop")
    assert created.status_code == 200, created.text
    [endpoint] = services.webhooks.endpoints()
    assert endpoint.url == URL and endpoint.campaigns == ["tea"]
    assert endpoint.events == ["conversion.created", "flag.raised"]
    assert endpoint.created_by == "user:marketing@staff.example.com"
    html = created.text
    assert shown_secret(html) == endpoint.secret
    assert created.headers["Cache-Control"] == "no-store"
    # Never again: neither on the endpoint's page nor in the list.
    detail = client.get(f"/console/webhooks/{endpoint.id}", headers=EN)
    assert detail.status_code == 200 and endpoint.secret not in detail.text
    assert "CRM of the tea shop" in detail.text and "Nothing was sent" in detail.text
    listed = client.get("/console/webhooks", headers=EN).text
    assert endpoint.secret not in listed
    assert f'href="/console/webhooks/{endpoint.id}"' in listed and URL in listed
    # A reload of the page that showed the secret sends the same form: nothing new, and a 409
    # naming the endpoint it made.
    again = client.post("/console/webhooks", data=sent, headers=EN)
    assert again.status_code == 409 and endpoint.id in again.text
    assert endpoint.secret not in again.text
    assert len(services.webhooks.endpoints()) == 1
    entry = services.audit.recent()[0]
    assert (entry.action, entry.target) == ("webhook.create", endpoint.id)
    assert entry.actor == "user:marketing@staff.example.com"
    assert entry.detail == {
        "url": URL,
        "events": ["conversion.created", "flag.raised"],
        "campaigns": ["tea"],
    }
    audit_page = as_role(app, "admin").get("/console/admin/audit", headers=EN).text
    assert "webhook.create" in audit_page and endpoint.id in audit_page


def test_errors_are_shown_in_the_form_which_keeps_the_input(app: Flask, services: Services) -> None:
    client = as_role(app, "admin")
    cases = [
        ({"url": "http://127.0.0.1:8080/hook"}, "url", "private"),
        ({"url": "http://localhost/hook"}, "url", "fully qualified"),
        ({"url": "ftp://hooks.example.com/"}, "url", "http"),
        ({"url": ""}, "url", "must not be empty"),
        ({"events": []}, "events", "choose at least one"),
        ({"events": ["reward.spent"]}, "events", "not one of the choices"),
        ({"campaigns": "no-such-campaign"}, "campaigns", "no-such-campaign"),
        ({"campaigns": "Bad Slug"}, "campaigns", "lowercase"),
        ({"description": "x" * 501}, "description", "at most 500"),
    ]
    for fields, field, words in cases:
        refused, sent = register(client, **fields)
        assert refused.status_code == 400, fields
        html = refused.text
        errors = field_errors(html)
        assert words in errors.get(field, ""), (fields, errors)
        # What was typed and ticked is still there.
        if field != "url":
            assert f'value="{URL}"' in html
        if field != "events":
            assert re.search(r'value="flag.raised" checked', html)
        assert 'class="error" role="alert"' in html
    assert services.webhooks.endpoints() == []
    # A refused form does not use up its id: corrected, it registers.
    refused, sent = register(client, url="http://10.0.0.1/hook")
    corrected = client.post("/console/webhooks", data={**sent, "url": URL}, headers=EN)
    assert corrected.status_code == 200 and len(services.webhooks.endpoints()) == 1
    damaged = client.post(
        "/console/webhooks", data={**sent, "url": URL, "form_id": "../x"}, headers=EN
    )
    assert damaged.status_code == 400 and "the form is damaged" in damaged.text


def test_disable_enable_rotate_and_delete(app: Flask, services: Services) -> None:
    client = as_role(app, "marketing")
    register(client)
    [endpoint] = services.webhooks.endpoints()
    page = f"/console/webhooks/{endpoint.id}"

    def act(path: str, **data: str) -> TestResponse:
        return client.post(f"{page}{path}", data={"csrf_token": token(client), **data}, headers=EN)

    disabled = act("/action", action="disable")
    assert disabled.status_code == 302 and disabled.location == page
    assert services.webhooks.require(endpoint.id).disabled
    shown = client.get(page, headers=EN).text
    assert 'value="enable"' in shown and 'value="disable"' not in shown
    assert ">disabled<" in client.get("/console/webhooks", headers=EN).text
    assert act("/action", action="enable").status_code == 302
    assert not services.webhooks.require(endpoint.id).disabled
    assert act("/action", action="explode").status_code == 400
    # Rotation: the new secret once, the previous one signing for the chosen overlap.
    rotate_form = form_of(client.get(page, headers=EN).text, f"{page}/rotate")
    sent = {**rotate_form, "expire_previous_after": "3600"}
    before = time.time()
    rotated = client.post(f"{page}/rotate", data=sent, headers=EN)
    assert rotated.status_code == 200
    now = services.webhooks.require(endpoint.id)
    assert shown_secret(rotated.text) == now.secret != endpoint.secret
    assert now.previous_secret == endpoint.secret
    assert before + 3600 <= now.previous_until <= time.time() + 3600
    assert now.secret not in client.get(page, headers=EN).text
    # Its reload rotates nothing more (that would drop the secret receivers use).
    reloaded = client.post(f"{page}/rotate", data=sent, headers=EN)
    assert reloaded.status_code == 409 and "rotated the secret already" in reloaded.text
    assert services.webhooks.require(endpoint.id).secret == now.secret
    odd = client.post(f"{page}/rotate", data={**rotate_form, "expire_previous_after": "5"})
    assert odd.status_code == 400
    # Deleting asks first.
    confirm = client.get(f"{page}/delete", headers=EN)
    assert confirm.status_code == 200 and URL in confirm.text
    assert services.webhooks.get(endpoint.id) is not None
    deleted = act("/delete")
    assert deleted.status_code == 302
    assert services.webhooks.get(endpoint.id) is None
    after = client.get(deleted.location, headers=EN)
    assert f"Endpoint {endpoint.id} was deleted." in after.text
    assert client.get(page, headers=EN).status_code == 404
    assert act("/delete").status_code == 404
    entries = [(e.action, e.target, e.detail) for e in services.audit.recent()[:5]]
    assert entries == [
        ("webhook.delete", endpoint.id, {"url": URL}),
        ("webhook.rotate", endpoint.id, {"expire_previous_after": 3600}),
        ("webhook.enable", endpoint.id, {}),
        ("webhook.disable", endpoint.id, {}),
        ("webhook.create", endpoint.id, entries[4][2]),
    ]


def test_the_delivery_log_and_redelivery(
    app: Flask, services: Services, request: pytest.FixtureRequest
) -> None:
    hooked: Receiver = request.getfixturevalue("receiver")  # test_webhooks' fixture
    # A loopback receiver, as a deployment allowing private addresses would have.
    services.webhooks.allow_private = True
    services.webhooks.max_attempts = 1
    client = as_role(app, "marketing")
    created, _ = register(client, url=hooked.url("/hook"), events=["flag.raised"])
    hooked.secrets["/hook"] = shown_secret(created.text)
    [endpoint] = services.webhooks.endpoints()
    page = f"/console/webhooks/{endpoint.id}"
    hooked.always_fail.add("/hook")
    flagged_campaign(services)
    services.webhooks.run(time.time())
    failing = client.get(page, headers=EN).text
    assert "Failed events" in failing and ">failed<" in failing and "HTTP 500" in failing
    listed = client.get("/console/webhooks", headers=EN).text
    assert re.search(r'<td class="num error">1</td>', listed)
    [event_id] = re.findall(r'name="event_id" value="([^"]+)"', failing)
    hooked.always_fail.clear()
    redeliver = form_of(failing, f"{page}/redeliver")
    assert client.post(f"{page}/redeliver", data=redeliver).status_code == 302
    services.webhooks.run(time.time() + 1)
    delivered = client.get(page, headers=EN).text
    assert ">delivered<" in delivered and "Failed events" not in delivered
    assert [r["valid"] for r in hooked.delivered("/hook")] == [True]  # signed with that secret
    entry = services.audit.recent()[0]
    assert (entry.action, entry.detail) == ("webhook.redeliver", {"event_id": event_id})
    # An event that is not failed is not redelivered.
    again = client.post(f"{page}/redeliver", data=redeliver, headers=EN)
    assert again.status_code == 404


def test_unknown_endpoints_are_not_found(app: Flask) -> None:
    client = as_role(app, "admin")
    for path in ("/console/webhooks/wh_0123456789abcdef", "/console/webhooks/junk"):
        for suffix in ("", "/delete"):
            response = client.get(path + suffix, headers=EN)
            assert response.status_code == 404, path
            assert 'class="top"' in response.text and "There is nothing here." in response.text
        for action in ("/action", "/rotate", "/redeliver", "/delete"):
            posted = client.post(path + action, data={"csrf_token": token(client), "action": "x"})
            assert posted.status_code == 404, (path, action)


def test_only_marketing_and_admins_and_only_with_the_token(app: Flask, services: Services) -> None:
    endpoint, secret = services.webhooks.create({"url": URL, "events": ["flag.raised"]}, "test")
    risk = as_role(app, "risk")
    assert 'href="/console/webhooks"' not in risk.get("/console/campaigns", headers=EN).text
    for path in ("/console/webhooks", f"/console/webhooks/{endpoint.id}"):
        refused = risk.get(path, headers=EN)
        assert refused.status_code == 403 and "Your role cannot open this page." in refused.text
    posted = risk.post(f"/console/webhooks/{endpoint.id}/delete", data={"csrf_token": token(risk)})
    assert posted.status_code == 403 and services.webhooks.get(endpoint.id) is not None
    # Without the session's CSRF token nothing changes (a cross-site form).
    client = as_role(app, "marketing")
    for path, data in [
        ("/console/webhooks", {"url": URL, "events": "flag.raised"}),
        (f"/console/webhooks/{endpoint.id}/action", {"action": "disable"}),
        (f"/console/webhooks/{endpoint.id}/rotate", {}),
        (f"/console/webhooks/{endpoint.id}/delete", {}),
    ]:
        forged = client.post(path, data=data, headers=EN)
        assert forged.status_code == 400 and "security token" in forged.text, path
    assert services.webhooks.endpoints() == [endpoint] and endpoint.secret == secret


def test_the_pages_read_in_chinese(app: Flask, services: Services) -> None:
    client = as_role(app, "marketing")
    page = client.get("/console/webhooks", headers=ZH).text
    assert "注册端点" in page and "有新转化" in page
    refused = client.post(
        "/console/webhooks",
        data={
            "csrf_token": token(client),
            "url": "http://192.168.1.10/hook",
            "events": [],
            "description": "",
        },
        headers=ZH,
    )
    assert refused.status_code == 400
    errors = field_errors(refused.text)
    assert HAN.search(errors["url"]) and HAN.search(errors["events"]), errors
    register(client)
    [endpoint] = services.webhooks.endpoints()
    detail = client.get(f"/console/webhooks/{endpoint.id}", headers=ZH).text
    assert "轮换签名密钥" in detail and "最近投递" in detail
