"""The console's webhook pages: the list, registering (errors in the form, the secret once, a
reload refused), disabling, enabling, rotating, deleting, the delivery log, roles, CSRF, the
audit log and the Chinese page."""

from __future__ import annotations

import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape
from werkzeug.test import TestResponse

from gateway.apikeys import claim_form, fingerprint, release_form, settle_form
from gateway.console.webhooks import failure
from gateway.services import Services
from gateway.store.keys import webhook_form, webhook_keys
from gateway.webhooks import FORM_WAIT
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
    # A reload of the page that showed the secret sends the same form: nothing new; the same
    # user sees what it made again (a double click shows the second response only).
    again = client.post("/console/webhooks", data=sent, headers=EN)
    assert again.status_code == 200 and shown_secret(again.text) == endpoint.secret
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
        # Every unknown one named, whatever separates them (Chinese commas and semicolons too).
        (
            {"campaigns": "nope，other；third"},
            "campaigns",
            "no campaigns &#39;nope&#39;, &#39;other",
        ),
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
    # Its reload rotates nothing more (that would drop the secret receivers use): the same
    # user sees the secret it made again.
    reloaded = client.post(f"{page}/rotate", data=sent, headers=EN)
    assert reloaded.status_code == 200 and shown_secret(reloaded.text) == now.secret
    assert services.webhooks.require(endpoint.id) == now
    odd = client.post(f"{page}/rotate", data={**rotate_form, "expire_previous_after": "5"})
    assert odd.status_code == 400
    # Deleting asks first.
    confirm = client.get(f"{page}/delete", headers=EN)
    assert confirm.status_code == 200 and URL in confirm.text
    assert services.webhooks.get(endpoint.id) is not None
    deleted = act("/delete")
    assert deleted.status_code == 302
    assert services.webhooks.get(endpoint.id) is None
    assert deleted.location == "/console/webhooks"
    after = client.get(deleted.location, headers=EN)
    assert f"Endpoint {endpoint.id} was deleted." in after.text
    # Said once, by the action: neither again nor whatever an address says.
    assert "was deleted" not in client.get(deleted.location, headers=EN).text
    spoofed = client.get("/console/webhooks?deleted=Your+account+is+locked", headers=EN)
    assert spoofed.status_code == 200 and "Your account is locked" not in spoofed.text
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
    waiting = client.get(page, headers=EN).text
    assert "<dt>Not tried yet</dt><dd>1</dd>" in waiting  # the flag.raised, in the outbox
    services.webhooks.run(time.time())
    failing = client.get(page, headers=EN).text
    assert "<dt>Not tried yet</dt><dd>0</dd>" in failing
    assert "Failed events" in failing and ">failed<" in failing and "HTTP 500" in failing
    listed = client.get("/console/webhooks", headers=EN).text
    assert re.search(r'<td class="num error">1</td>', listed)
    [event_id] = re.findall(r'name="event_id" value="([^"]+)"', failing)
    hooked.always_fail.clear()
    redeliver = form_of(failing, f"{page}/redeliver")
    queued = client.post(f"{page}/redeliver", data=redeliver, headers=EN)
    assert queued.status_code == 302 and queued.location == page
    confirmed = client.get(page, headers=EN).text
    assert f"Event {event_id} is queued again" in confirmed
    assert "Failed events" not in confirmed
    services.webhooks.run(time.time() + 1)
    delivered = client.get(page, headers=EN).text
    assert ">delivered<" in delivered and "Failed events" not in delivered
    assert [r["valid"] for r in hooked.delivered("/hook")] == [True]  # signed with that secret
    entry = services.audit.recent()[0]
    assert (entry.action, entry.detail) == ("webhook.redeliver", {"event_id": event_id})
    # An event that is not failed (any more) is not redelivered: the endpoint's page says so,
    # in the reader's language.
    again = client.post(f"{page}/redeliver", data=redeliver, headers=ZH)
    assert again.status_code == 302 and again.location == page
    said = client.get(page, headers=ZH).text
    assert f'<p class="notice warning" role="status">事件 {event_id} ' in said
    assert "no failed delivery" not in said
    assert services.audit.recent()[0].detail == {"event_id": event_id}  # nothing more
    odd = client.post(f"{page}/redeliver", data={**redeliver, "event_id": "x" * 101})
    assert odd.status_code == 400


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


def resend(client: FlaskClient, path: str, sent: dict[str, object]) -> TestResponse:
    """``sent`` (a form another page of the same user gave) posted with the client's own CSRF
    token: the same form sent again from another tab of the session, or by someone else."""
    return client.post(path, data={**sent, "csrf_token": token(client)}, headers=EN)


def test_a_double_click_shows_its_sender_the_secret_the_first_click_made(
    app: Flask, services: Services
) -> None:
    marketing = as_role(app, "marketing")
    created, sent = register(marketing)
    [endpoint] = services.webhooks.endpoints()
    assert shown_secret(created.text) == endpoint.secret
    # The second click's response is the one the browser shows: the same endpoint and secret.
    again = marketing.post("/console/webhooks", data=sent, headers=EN)
    assert again.status_code == 200 and shown_secret(again.text) == endpoint.secret
    assert f"<code>{endpoint.id}</code>" in again.text
    # Someone else sending that form gets no secret: a 409 naming the endpoint.
    admin = as_role(app, "admin")
    refused = resend(admin, "/console/webhooks", sent)
    assert refused.status_code == 409 and endpoint.id in refused.text
    assert endpoint.secret not in refused.text and "whsec_" not in refused.text
    assert services.webhooks.endpoints() == [endpoint]
    audited = [e.action for e in services.audit.recent() if e.action.startswith("webhook.")]
    assert audited == ["webhook.create"]
    # A rotation: the same; and once the secret is rotated again by another form, the first
    # form's secret is no longer the endpoint's, so it is not shown again either.
    page = f"/console/webhooks/{endpoint.id}"
    first = {**form_of(marketing.get(page, headers=EN).text, f"{page}/rotate")}
    rotated = marketing.post(f"{page}/rotate", data=first, headers=EN)
    secret = shown_secret(rotated.text)
    twice = marketing.post(f"{page}/rotate", data=first, headers=EN)
    assert twice.status_code == 200 and shown_secret(twice.text) == secret
    assert services.webhooks.require(endpoint.id).previous_secret == endpoint.secret
    other = resend(admin, f"{page}/rotate", first)
    assert other.status_code == 409 and "rotated the secret already" in other.text
    assert "whsec_" not in other.text
    second = form_of(marketing.get(page, headers=EN).text, f"{page}/rotate")
    newest = shown_secret(marketing.post(f"{page}/rotate", data=second, headers=EN).text)
    stale = marketing.post(f"{page}/rotate", data=first, headers=EN)
    assert stale.status_code == 409 and "whsec_" not in stale.text
    assert services.webhooks.require(endpoint.id).secret == newest != secret
    # A rotation form sent to another endpoint's address shows nothing of the first's.
    elsewhere, _ = services.webhooks.create({"url": URL, "events": ["flag.raised"]}, "test")
    crossed = marketing.post(f"/console/webhooks/{elsewhere.id}/rotate", data=second, headers=EN)
    assert crossed.status_code == 409 and "whsec_" not in crossed.text
    assert services.webhooks.require(elsewhere.id).secret == elsewhere.secret


def test_two_clicks_at_once_make_one_endpoint_and_one_rotation_and_show_both_its_secret(
    app: Flask, services: Services
) -> None:
    """The two requests of a double click race (two threads, two tabs of one user): one makes
    the endpoint, the other waits for it and shows the same secret."""
    tabs = [as_role(app, "marketing"), as_role(app, "marketing")]
    page = tabs[0].get("/console/webhooks", headers=EN).text
    sent: dict[str, object] = {
        **form_of(page, "/console/webhooks"),
        "url": URL,
        "events": ["flag.raised"],
        "description": "twice",
    }

    def both(path: str, data: dict[str, object]) -> list[TestResponse]:
        start = threading.Barrier(len(tabs))

        def click(tab: FlaskClient) -> TestResponse:
            start.wait()
            return resend(tab, path, data)

        with ThreadPoolExecutor(len(tabs)) as pool:
            return list(pool.map(click, tabs))

    responses = both("/console/webhooks", sent)
    [endpoint] = services.webhooks.endpoints()
    assert [r.status_code for r in responses] == [200, 200]
    assert [shown_secret(r.text) for r in responses] == [endpoint.secret] * 2
    path = f"/console/webhooks/{endpoint.id}"
    rotate = form_of(tabs[0].get(path, headers=EN).text, f"{path}/rotate")
    responses = both(f"{path}/rotate", rotate)
    now = services.webhooks.require(endpoint.id)
    assert [r.status_code for r in responses] == [200, 200]
    assert [shown_secret(r.text) for r in responses] == [now.secret] * 2
    # One rotation: the previous secret is the endpoint's first, not one a second rotation made.
    assert now.previous_secret == endpoint.secret != now.secret
    audited = [e.action for e in services.audit.recent() if e.action.startswith("webhook.")]
    assert audited == ["webhook.rotate", "webhook.create"]


def test_a_form_sent_while_its_first_sending_is_at_work_waits_for_it(
    app: Flask, services: Services
) -> None:
    """Claimed, not settled yet: the second sending waits (up to FORM_WAIT) for the first to
    finish and shows what it made; one that never finishes gets a 409; a claim given back (the
    first sending failed) is taken and the form does what it asks."""
    redis = services.store.main
    actor = "user:marketing@staff.example.com"
    client = as_role(app, "marketing")

    def claimed() -> tuple[dict[str, object], str]:
        page = client.get("/console/webhooks", headers=EN).text
        sent: dict[str, object] = {
            **form_of(page, "/console/webhooks"),
            "url": URL,
            "events": ["flag.raised"],
        }
        once = claim_form(redis, str(sent["form_id"]), webhook_form, actor=actor)
        return sent, once

    sent, once = claimed()
    made, _ = services.webhooks.create({"url": URL, "events": ["flag.raised"]}, actor)
    finish = threading.Timer(
        0.3, settle_form, (redis, once, made.id), {"actor": actor, "made": fingerprint(made.secret)}
    )
    finish.start()
    waited = client.post("/console/webhooks", data=sent, headers=EN)
    finish.join()
    assert waited.status_code == 200 and shown_secret(waited.text) == made.secret
    sent, once = claimed()
    started = time.monotonic()
    stuck = client.post("/console/webhooks", data=sent, headers=EN)
    assert stuck.status_code == 409 and "whsec_" not in stuck.text
    assert FORM_WAIT <= time.monotonic() - started < FORM_WAIT + 2
    # Someone else does not wait: what the first sending makes is not theirs to see.
    started = time.monotonic()
    other = resend(as_role(app, "admin"), "/console/webhooks", sent)
    assert other.status_code == 409 and time.monotonic() - started < FORM_WAIT
    sent, once = claimed()
    failed = threading.Timer(0.3, release_form, (redis, once))
    failed.start()
    retried = client.post("/console/webhooks", data=sent, headers=EN)
    failed.join()
    assert retried.status_code == 200
    assert len(services.webhooks.endpoints()) == 2


#: Errors as deliveries stored them (the QA pass's), and what the Chinese console says for them.
FAILURES = {
    "ReadTimeoutError: HTTPConnectionPool(host='hooks.example.com', port=443): Read timed out. "
    "(read timeout=4.998)": "超时",
    "NewConnectionError: <urllib3.connection.HTTPConnection object at 0x7f>: Failed to "
    "establish a new connection: [Errno 111] Connection refused": "连接被拒绝",
    "NameResolutionError: <urllib3.connection.HTTPSConnection object at 0x7f>: Failed to "
    "resolve 'nx.example.com' ([Errno -2] Name or service not known)": "无法解析主机名",
    "SSLError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed": "TLS 错误",
    "HTTP 503": "HTTP 状态码 503",
    "refused: the host resolves to 10.0.0.7": "已拒绝：主机解析到私有地址",
    "something nobody expected": "something nobody expected",
}


def test_delivery_errors_read_as_a_few_words_with_the_whole_error_in_the_title(
    app: Flask, services: Services
) -> None:
    with app.test_request_context(headers=ZH):
        assert {error: failure(error) for error in FAILURES} == FAILURES
    # A receiver that refuses connections, for real: its page says so in words, the API and
    # the store keep the error as it was.
    services.webhooks.allow_private = True
    services.webhooks.max_attempts = 1
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    endpoint, _ = services.webhooks.create(
        {"url": f"http://127.0.0.1:{port}/hook", "events": ["flag.raised"]}, "test"
    )
    flagged_campaign(services)
    services.webhooks.run(time.time())
    [logged] = services.webhooks.deliveries(endpoint.id)
    assert "Connection refused" in logged["error"]
    page = as_role(app, "marketing").get(f"/console/webhooks/{endpoint.id}", headers=ZH).text
    shown = f'<span class="error" title="{escape(logged["error"])}">连接被拒绝</span>'
    assert page.count(shown) == 1 and page.count(f'title="{escape(logged["error"])}"') == 2
    assert ">连接被拒绝<" in page.split("最近投递")[0]  # the failed events' table


def test_an_http_status_is_shown_once(app: Flask, services: Services) -> None:
    """``500`` in the response column, not ``500 HTTP 500``."""
    endpoint, _ = services.webhooks.create({"url": URL, "events": ["flag.raised"]}, "test")
    wk = webhook_keys(endpoint.id)
    row = {"event": "flag.raised", "attempt": 1, "latency_ms": 3.0, "at": repr(time.time())}
    services.store.main.xadd(
        wk.deliveries,
        {
            **row,
            "event_id": "evt_1_1-0",
            "outcome": "retrying",
            "status_code": 500,
            "error": "HTTP 500",
        },
    )
    services.store.main.xadd(
        wk.deliveries,
        {**row, "event_id": "evt_1_2-0", "outcome": "delivered", "status_code": 204, "error": ""},
    )
    page = as_role(app, "marketing").get(f"/console/webhooks/{endpoint.id}", headers=EN).text
    assert '<span class="num error">500</span></td>' in page
    assert '<span class="num">204</span></td>' in page and "HTTP 500" not in page


def edit(client: FlaskClient, endpoint_id: str, **fields: object) -> TestResponse:
    """Open the endpoint's page and send its edit form, prefilled, with ``fields`` changed."""
    path = f"/console/webhooks/{endpoint_id}"
    page = client.get(path, headers=EN)
    assert page.status_code == 200
    html = page.text
    form = re.search(rf'<form method="post" action="{path}/edit"[^>]*>(.*?)</form>', html, re.S)
    assert form and "data-once" in form.group(0)
    body = form.group(1)
    data: dict[str, object] = {
        **form_of(html, f"{path}/edit"),
        "url": re.search(r'name="url" type="url" value="([^"]*)"', body).group(1),  # type: ignore[union-attr]
        "events": re.findall(r'name="events" value="([^"]+)" checked', body),
        "campaigns": re.search(r'name="campaigns" value="([^"]*)"', body).group(1),  # type: ignore[union-attr]
        "description": re.search(r'name="description" maxlength="500" value="([^"]*)"', body).group(
            1
        ),  # type: ignore[union-attr]
        **fields,
    }
    return client.post(f"{path}/edit", data=data, headers=EN)


def test_an_endpoint_is_edited_on_its_page(app: Flask, services: Services) -> None:
    endpoint, _ = services.webhooks.create(
        {"url": URL, "events": ["flag.raised"], "description": "CRM"}, "test"
    )
    flagged_campaign(services, "tea")
    client = as_role(app, "marketing")
    # Prefilled with what it is: sent unchanged, nothing changes.
    same = edit(client, endpoint.id)
    assert same.status_code == 302
    assert services.webhooks.get(endpoint.id) == endpoint
    saved = edit(
        client,
        endpoint.id,
        url="https://hooks.example.com/v2",
        events=["conversion.created", "reward.credited"],
        campaigns="tea",
    )
    assert saved.status_code == 302
    assert saved.headers["Location"].endswith(f"/console/webhooks/{endpoint.id}")
    changed = services.webhooks.get(endpoint.id)
    assert changed is not None
    assert changed.url == "https://hooks.example.com/v2"
    assert changed.events == ["conversion.created", "reward.credited"]
    assert changed.campaigns == ["tea"] and changed.description == "CRM"
    page = client.get(f"/console/webhooks/{endpoint.id}", headers=EN).text
    assert "The endpoint&#39;s settings were saved." in page
    assert "https://hooks.example.com/v2" in page and 'value="tea"' in page
    assert re.search(r'value="reward.credited" checked', page)
    # Every campaign again.
    assert edit(client, endpoint.id, campaigns="").status_code == 302
    again = services.webhooks.get(endpoint.id)
    assert again is not None and again.campaigns == []
    entry = services.audit.recent()[1]
    assert (entry.action, entry.target) == ("webhook.edit", endpoint.id)
    assert entry.detail == {
        "url": "https://hooks.example.com/v2",
        "events": ["conversion.created", "reward.credited"],
        "campaigns": ["tea"],
    }


def test_a_refused_edit_shows_the_problem_by_its_field_and_changes_nothing(
    app: Flask, services: Services
) -> None:
    endpoint, _ = services.webhooks.create({"url": URL, "events": ["flag.raised"]}, "test")
    client = as_role(app, "admin")
    cases = [
        ({"url": "http://10.0.0.1/hook"}, "url", "private"),
        ({"url": "not a url"}, "url", "whitespace"),
        ({"events": []}, "events", "choose at least one"),
        ({"campaigns": "no-such-campaign"}, "campaigns", "no-such-campaign"),
    ]
    for fields, field, words in cases:
        refused = edit(client, endpoint.id, description="typed", **fields)
        assert refused.status_code == 400, fields
        errors = field_errors(refused.text)
        assert field in errors and words in errors[field], (fields, errors)
        assert 'value="typed"' in refused.text
        if field == "url":
            assert f'value="{escape(fields["url"])}"' in refused.text
        assert services.webhooks.get(endpoint.id) == endpoint


def test_only_marketing_and_admins_edit_and_only_with_the_token(
    app: Flask, services: Services
) -> None:
    endpoint, _ = services.webhooks.create({"url": URL, "events": ["flag.raised"]}, "test")
    path = f"/console/webhooks/{endpoint.id}/edit"
    data = {"url": "https://hooks.example.com/other", "events": "flag.raised"}
    risk = as_role(app, "risk")
    refused = risk.post(path, data={**data, "csrf_token": token(risk)}, headers=EN)
    assert refused.status_code == 403
    forged = as_role(app, "marketing").post(path, data=data, headers=EN)
    assert forged.status_code == 400 and "security token" in forged.text
    assert services.webhooks.get(endpoint.id) == endpoint
