"""Webhooks: registration, signed delivery to a real local HTTP receiver, retries with backoff,
dead letters and redelivery, the delivery log, roles and bad input."""

from __future__ import annotations

import json
import re
import ssl
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from flask import Flask
from flask.testing import FlaskClient

from gateway.flags import FlagCandidate
from gateway.services import Services
from gateway.store.keys import WEBHOOK_LEASE, campaign_keys
from gateway.store.scripts import script
from gateway.webhooks import (
    EVENTS,
    MAX_PREVIOUS_SECRETS,
    SIGNATURE_HEADER,
    USER_AGENT,
    WebhookService,
    canonical_url,
    check_url,
    sign,
    verify,
)
from tests.conftest import bearer, make_app, services_of
from tests.test_conversions import record_click

SLOW = 0.6
ALL_EVENTS = [
    "conversion.created",
    "reward.credited",
    "reward.held",
    "reward.denied",
    "reward.clawed_back",
    "flag.raised",
]


class Receiver:
    """A marketing system's webhook receiver: checks every signature, answers 500 to the first
    attempt of each event on paths in ``fail_first`` and to everything on ``always_fail``."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.secrets: dict[str, str] = {}
        self.fail_first: set[str] = set()
        self.always_fail: set[str] = set()
        #: Paths whose receiver takes SLOW seconds and then fails (a receiver hanging).
        self.slow_fail: set[str] = set()
        self.requests: list[dict[str, Any]] = []
        self._failed_once: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.answer(self, body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.server.server_address[1]}{path}"

    def answer(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        path = handler.path
        event_id = handler.headers["Refgate-Event-Id"]
        secret = self.secrets.get(path, "")
        valid = verify(secret, handler.headers[SIGNATURE_HEADER] or "", body, now=time.time())
        payload = json.loads(body)
        if path in self.slow_fail:
            time.sleep(SLOW)
        with self._lock:
            if not valid or payload["id"] != event_id:
                status = 400
            elif path in self.always_fail or path in self.slow_fail:
                status = 500
            elif path in self.fail_first and (path, event_id) not in self._failed_once:
                self._failed_once.add((path, event_id))
                status = 500
            else:
                status = 200
            self.requests.append(
                {
                    "path": path,
                    "event_id": event_id,
                    "type": handler.headers["Refgate-Event-Type"],
                    "attempt": int(handler.headers["Refgate-Delivery-Attempt"]),
                    "status": status,
                    "valid": valid,
                    "payload": payload,
                    "user_agent": handler.headers["User-Agent"],
                    "headers": dict(handler.headers),
                    "body": body,
                }
            )
        handler.send_response(status)
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"ok")

    def delivered(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path and r["status"] == 200]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def app(tmp_path: Path, store_url: str) -> Iterator[Flask]:
    # Loopback receivers: private addresses allowed, as a deployment may choose.
    app = make_app(
        tmp_path / "data",
        store_url,
        REFGATE_WEBHOOK_ALLOW_PRIVATE="1",
        REFGATE_WEBHOOK_TIMEOUT="2",
    )
    yield app
    services_of(app).close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


def register(
    client: FlaskClient,
    key: str,
    receiver: Receiver,
    path: str,
    host: str = "127.0.0.1",
    **body: Any,
) -> dict[str, Any]:
    response = client.post(
        "/api/v1/webhooks",
        json={"url": receiver.url(path, host), "events": ALL_EVENTS, **body},
        headers=bearer(key),
    )
    assert response.status_code == 201, response.json
    data: dict[str, Any] = response.json
    receiver.secrets[path] = data["secret"]
    return data


def run_until_idle(services: Services, start: float, runs: int = 30) -> float:
    """Run the delivery job with a clock far enough ahead each time that every retry is due."""
    now = start
    for _ in range(runs):
        services.webhooks.run(now)
        now += 10_000
        pending = [services.webhooks.summary(e)["retrying"] for e in services.webhooks.endpoints()]
        if not any(pending) and services.webhooks.run(now) == 0:
            return now
    raise AssertionError("webhooks still pending")


def convert(
    client: FlaskClient,
    keys: dict[str, str],
    services: Services,
    campaign: Any,
    user: str,
    referrer: str = "alice",
) -> None:
    click = record_click(services, campaign, referrer)
    response = client.post(
        "/api/v1/conversions",
        json={"click_id": click, "user": user},
        headers=bearer(keys["admin"]),
    )
    assert response.status_code == 201


def test_events_arrive_signed_once_per_endpoint_after_retries(
    client: FlaskClient,
    keys: dict[str, str],
    services: Services,
    campaign: dict[str, Any],
    receiver: Receiver,
) -> None:
    receiver.fail_first.add("/all")
    everything = register(client, keys["marketing"], receiver, "/all")
    assert everything["secret"].startswith("whsec_") and everything["events"] == ALL_EVENTS
    flags_only = register(
        client, keys["admin"], receiver, "/flags", events=["flag.raised"], campaigns=["milk-tea"]
    )
    assert flags_only["campaigns"] == ["milk-tea"]

    # A conversion (credited), a flag on the sharer (holds it), a fraud decision (denies it).
    convert(client, keys, services, campaign, "bob")
    flag, new = services.flags.raise_flag(
        campaign["id"],
        "milk-tea",
        FlagCandidate(kind="referrer", subject="alice", score=0.9, reasons=("ring",)),
        time.time(),
    )
    assert new
    # Raised again with more evidence: still one flag, one event.
    services.flags.raise_flag(
        campaign["id"],
        "milk-tea",
        FlagCandidate(kind="referrer", subject="alice", score=0.95, reasons=("more",)),
        time.time(),
    )
    services.flags.decide(flag.id, "fraud", "a ring", "test")

    # The scheduler runs the job (one process, under its store lock); then retries fall due.
    assert "webhooks" in services.scheduler.tick()
    run_until_idle(services, time.time())

    assert all(r["valid"] for r in receiver.requests)
    delivered = receiver.delivered("/all")
    assert Counter(r["type"] for r in delivered) == {
        "conversion.created": 1,
        "reward.credited": 1,
        "flag.raised": 1,
        "reward.held": 1,
        "reward.denied": 1,
    }
    ids = [r["event_id"] for r in delivered]
    assert len(set(ids)) == len(ids), "an event was delivered twice"
    # Every event failed once and succeeded on its second attempt.
    assert {r["attempt"] for r in delivered} == {2}
    first = next(r["payload"] for r in delivered if r["type"] == "conversion.created")
    assert first["campaign"] == "milk-tea" and first["data"]["participant"] == "bob"
    assert first["data"]["reward"] == {"status": "credited", "reason": "", "amount": 1}
    raised = next(r["payload"] for r in delivered if r["type"] == "flag.raised")
    assert raised["data"]["subject"] == "alice" and raised["data"]["kind"] == "referrer"

    only_flags = receiver.delivered("/flags")
    assert [r["type"] for r in only_flags] == ["flag.raised"]
    assert only_flags[0]["event_id"] == raised["id"]  # one event, one id, every endpoint
    assert all(r["attempt"] == 1 for r in receiver.requests if r["path"] == "/flags")

    # The delivery log: a 500 then a 200 per event, with latencies, newest first.
    log = client.get(
        f"/api/v1/webhooks/{everything['id']}/deliveries", headers=bearer(keys["marketing"])
    ).json
    assert log["failed"] == []
    attempts = log["deliveries"]
    assert len(attempts) == 10
    assert {(a["attempt"], a["status_code"], a["outcome"]) for a in attempts} == {
        (1, 500, "retrying"),
        (2, 200, "delivered"),
    }
    assert all(a["latency_ms"] > 0 and a["at"] > 0 for a in attempts)
    assert next(a for a in attempts if a["status_code"] == 500)["error"] == "HTTP 500"
    assert attempts[0]["at"] >= attempts[-1]["at"]

    # Nothing new: nothing sent.
    count = len(receiver.requests)
    assert services.webhooks.run(time.time() + 10**6) == 0
    assert len(receiver.requests) == count
    # Handled by every endpoint and old: trimmed from the outbox, up to the cursors.
    assert services.store.main.xlen(campaign_keys(campaign["id"]).outbox) == 1


def test_a_failing_receivers_backlog_is_counted_and_drains_when_it_answers(
    client: FlaskClient,
    keys: dict[str, str],
    services: Services,
    campaign: dict[str, Any],
    receiver: Receiver,
) -> None:
    """Behind a dead receiver a run tries one new event (after a failure it leaves the
    endpoint): the rest wait in the outbox, counted as not tried yet, and none is lost."""
    receiver.always_fail.add("/down")
    endpoint = register(client, keys["marketing"], receiver, "/down", events=["conversion.created"])
    for user in ("bob", "carol", "dave"):
        convert(client, keys, services, campaign, user)
    path = f"/api/v1/webhooks/{endpoint['id']}"

    def counts() -> tuple[int, int, int]:
        summary = client.get(path, headers=bearer(keys["admin"])).json
        return summary["waiting"], summary["retrying"], summary["failed"]

    assert counts() == (3, 0, 0)
    now = time.time()
    services.webhooks.run(now)
    assert counts() == (2, 1, 0) and len(receiver.requests) == 1
    services.webhooks.run(now + 1)  # the first one's retry is not due: the next new one
    assert counts() == (1, 2, 0) and len(receiver.requests) == 2
    receiver.always_fail.discard("/down")
    for step in (1, 2, 3):
        services.webhooks.run(now + step * 10_000)
    assert counts() == (0, 0, 0)
    assert sorted(r["payload"]["data"]["participant"] for r in receiver.delivered("/down")) == [
        "bob",
        "carol",
        "dave",
    ]


def test_out_of_attempts_is_failed_and_can_be_redelivered(
    client: FlaskClient,
    keys: dict[str, str],
    services: Services,
    campaign: dict[str, Any],
    receiver: Receiver,
) -> None:
    services.webhooks.max_attempts = 3
    receiver.always_fail.add("/down")
    endpoint = register(client, keys["marketing"], receiver, "/down", events=["conversion.created"])
    convert(client, keys, services, campaign, "bob")
    now = time.time()
    assert services.webhooks.run(now) == 0
    summary = client.get(f"/api/v1/webhooks/{endpoint['id']}", headers=bearer(keys["admin"])).json
    assert summary["retrying"] == 1 and "secret" not in summary
    # Not due yet: backoff (30 s or more) means no attempt a second later.
    services.webhooks.run(now + 1)
    assert len(receiver.requests) == 1
    for step in (2, 3, 4):
        services.webhooks.run(now + step * 10_000)
    assert [r["attempt"] for r in receiver.requests] == [1, 2, 3]
    path = f"/api/v1/webhooks/{endpoint['id']}/deliveries"
    log = client.get(path, headers=bearer(keys["marketing"])).json
    assert [a["outcome"] for a in log["deliveries"]] == ["failed", "retrying", "retrying"]
    (failed,) = log["failed"]
    assert failed["event"] == "conversion.created" and failed["attempts"] == 3
    assert failed["error"] == "HTTP 500"

    # The receiver is fixed; marketing sends the event again.
    receiver.always_fail.clear()
    redeliver = f"{path}/{failed['event_id']}/redeliver"
    assert client.post(redeliver, headers=bearer(keys["marketing"])).status_code == 202
    assert client.post(redeliver, headers=bearer(keys["marketing"])).status_code == 404
    assert services.webhooks.run(now + 10**6) == 1
    assert receiver.delivered("/down")[0]["event_id"] == failed["event_id"]
    assert client.get(path, headers=bearer(keys["marketing"])).json["failed"] == []
    unknown = client.post(f"{path}/evt_1_1-0/redeliver", headers=bearer(keys["marketing"]))
    assert unknown.status_code == 404 and unknown.json["error"] == "delivery_not_found"


def test_a_name_resolving_to_a_private_address_is_refused_at_delivery(
    client: FlaskClient,
    keys: dict[str, str],
    services: Services,
    campaign: dict[str, Any],
    receiver: Receiver,
) -> None:
    hook = register(
        client, keys["admin"], receiver, "/x", "localhost", events=["conversion.created"]
    )
    services.webhooks.allow_private = False  # the policy of a deployment that does not allow it
    convert(client, keys, services, campaign, "bob")
    services.webhooks.run(time.time())
    assert receiver.requests == []
    (attempt,) = client.get(
        f"/api/v1/webhooks/{hook['id']}/deliveries", headers=bearer(keys["admin"])
    ).json["deliveries"]
    assert attempt["status_code"] is None and "resolves to 127.0.0.1" in attempt["error"]


class Resolver:
    """A DNS resolver that knows names no real resolver does, and counts its lookups."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.lookups: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        return self.answers[host]


def pinned_service(services: Services, resolver: Resolver, **options: Any) -> WebhookService:
    """The delivery service as refgate builds it, with ``resolver`` for DNS."""
    return WebhookService(
        services.store.main, services.campaigns, allow_private=True, resolver=resolver, **options
    )


def test_a_delivery_connects_to_the_address_its_check_looked_up(
    client: FlaskClient,
    keys: dict[str, str],
    services: Services,
    campaign: dict[str, Any],
    receiver: Receiver,
) -> None:
    """One lookup a delivery, and the connection goes where it said: a name re-pointed between
    the private-address check and the connection (DNS rebinding) cannot reach another host.
    No real resolver knows hooks.pinned.example, so a second lookup by the HTTP client would
    fail the delivery. The receiver still sees the name in Host. The first address refuses
    connections (nothing listens on 127.0.0.2): the next is tried, as a resolving client does."""
    hook = register(
        client,
        keys["admin"],
        receiver,
        "/pinned",
        "hooks.pinned.example",
        events=["conversion.created"],
    )
    resolver = Resolver({"hooks.pinned.example": ["127.0.0.2", "127.0.0.1"]})
    convert(client, keys, services, campaign, "bob")
    assert pinned_service(services, resolver).run(time.time()) == 1
    (request,) = receiver.delivered("/pinned")
    port = receiver.server.server_address[1]
    assert request["headers"]["Host"] == f"hooks.pinned.example:{port}"
    assert request["valid"] and resolver.lookups == ["hooks.pinned.example"]

    # The same name now resolving to a private address is refused, with no connection.
    resolver.answers["hooks.pinned.example"] = ["8.8.8.8", "10.0.0.7"]
    strict = pinned_service(services, resolver)
    strict.allow_private = False
    convert(client, keys, services, campaign, "carol")
    strict.run(time.time())
    assert len(receiver.requests) == 1
    log = client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=bearer(keys["admin"]))
    assert "resolves to 10.0.0.7" in log.json["deliveries"][0]["error"]


def certificate(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for ``name`` and its key (openssl, as an operator makes one)."""
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}",
         "-addext", f"subjectAltName=DNS:{name}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.mark.parametrize("certified", ["hooks.pinned.example", "elsewhere.example"])
def test_a_pinned_tls_connection_still_checks_the_certificate_for_the_name(
    client: FlaskClient,
    keys: dict[str, str],
    services: Services,
    campaign: dict[str, Any],
    tmp_path: Path,
    certified: str,
) -> None:
    """Connecting to the looked-up address keeps TLS bound to the name: SNI and the certificate
    check are the name's, so the delivery succeeds with a certificate for the name and fails
    with anyone else's."""
    cert, key = certificate(tmp_path, certified)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    names: list[str | None] = []
    tls.sni_callback = lambda sock, name, ctx: names.append(name)  # type: ignore[assignment,misc,func-returns-value]
    receiver = Receiver(tls)
    try:
        response = client.post(
            "/api/v1/webhooks",
            json={
                "url": receiver.url("/tls", "hooks.pinned.example", "https"),
                "events": ["conversion.created"],
            },
            headers=bearer(keys["admin"]),
        )
        assert response.status_code == 201
        receiver.secrets["/tls"] = response.json["secret"]
        resolver = Resolver({"hooks.pinned.example": ["127.0.0.1"]})
        service = pinned_service(services, resolver, ca_certs=str(cert))
        convert(client, keys, services, campaign, "bob")
        delivered = service.run(time.time())
        assert names == ["hooks.pinned.example"]
        if certified == "hooks.pinned.example":
            assert delivered == 1 and receiver.delivered("/tls")[0]["valid"]
        else:
            assert delivered == 0 and receiver.requests == []
            log = client.get(
                f"/api/v1/webhooks/{response.json['id']}/deliveries",
                headers=bearer(keys["admin"]),
            ).json
            error = log["deliveries"][0]["error"]
            assert error.startswith("SSLError") and "doesn't match 'elsewhere.example'" in error
    finally:
        receiver.close()


def test_registration_checks_its_input(
    client: FlaskClient, keys: dict[str, str], campaign: dict[str, Any]
) -> None:
    admin = bearer(keys["admin"])
    good = {"url": "https://hooks.example.com/refgate", "events": ["flag.raised"]}
    cases = [
        ({**good, "url": "ftp://hooks.example.com/"}, "url"),
        ({**good, "url": "https://user:pw@hooks.example.com/"}, "url"),
        ({**good, "url": "https://hooks.example.com/#x"}, "url"),
        ({**good, "url": "https://hooks.example.com:99999/"}, "url"),
        ({**good, "url": "https:///nohost"}, "url"),
        ({**good, "url": "http://[::1/"}, "url"),
        ({**good, "url": "http://exa mple.com/"}, "url"),
        ({**good, "url": "http://" + "a" * 70 + ".example.com/"}, "url"),
        ({**good, "url": 7}, "url"),
        # Blank: long enough for the model, nothing for the check (schemathesis found a 500).
        ({**good, "url": " "}, "url"),
        ({**good, "url": "\t\n"}, "url"),
        ({**good, "events": []}, "events"),
        ({**good, "events": ["reward.spent"]}, "events.0"),
        ({**good, "campaigns": ["no-such-campaign"]}, "campaigns"),
        ({**good, "campaigns": ["Bad Slug"]}, "campaigns.0"),
        ({**good, "secret": "mine"}, "secret"),
        ({"events": ["flag.raised"]}, "url"),
    ]
    for body, field in cases:
        response = client.post("/api/v1/webhooks", json=body, headers=admin)
        assert response.status_code == 400, (body, response.json)
        assert field in response.json["fields"], (body, response.json)
    assert client.post("/api/v1/webhooks", data="[", headers=admin).status_code == 400
    # Nothing was registered by any of that.
    assert client.get("/api/v1/webhooks", headers=admin).json == {"webhooks": []}
    created = client.post("/api/v1/webhooks", json=good, headers=admin)
    assert created.status_code == 201
    assert client.get("/api/v1/webhooks/wh_nope", headers=admin).status_code == 404
    endpoint = created.json["id"]
    bad_limit = client.get(f"/api/v1/webhooks/{endpoint}/deliveries?limit=0", headers=admin)
    assert bad_limit.status_code == 400 and "limit" in bad_limit.json["fields"]
    assert client.delete(f"/api/v1/webhooks/{endpoint}", headers=admin).status_code == 204
    assert client.delete(f"/api/v1/webhooks/{endpoint}", headers=admin).status_code == 404


def test_only_marketing_and_admin_manage_webhooks(
    client: FlaskClient, keys: dict[str, str], campaign: dict[str, Any]
) -> None:
    body = {"url": "https://hooks.example.com/refgate", "events": ["flag.raised"]}
    for role in ("risk", "conversion"):
        headers = bearer(keys[role])
        assert client.post("/api/v1/webhooks", json=body, headers=headers).status_code == 403
        assert client.get("/api/v1/webhooks", headers=headers).status_code == 403
    assert client.get("/api/v1/webhooks").status_code == 401
    created = client.post("/api/v1/webhooks", json=body, headers=bearer(keys["marketing"]))
    assert created.status_code == 201
    endpoint = created.json["id"]
    risk = bearer(keys["risk"])
    assert client.delete(f"/api/v1/webhooks/{endpoint}", headers=risk).status_code == 403
    assert client.get(f"/api/v1/webhooks/{endpoint}/deliveries", headers=risk).status_code == 403
    listed = client.get("/api/v1/webhooks", headers=bearer(keys["admin"])).json["webhooks"]
    assert [w["id"] for w in listed] == [endpoint] and "secret" not in listed[0]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://localhost/hook",
        "http://printer.local/hook",
        "http://2130706433/hook",
        # IPv4 carried in IPv6: mapped, 6to4, NAT64 (well-known prefix), Teredo
        "http://[::ffff:10.0.0.1]/hook",
        "http://[2002:7f00:1::]/hook",
        "http://[2002:a9fe:a9fe::1]/hook",
        "http://[64:ff9b::7f00:1]/hook",
        "http://[64:ff9b::a9fe:a9fe]/hook",
        "http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/hook",
    ],
)
def test_private_addresses_are_refused_unless_allowed(url: str) -> None:
    problem = check_url(url, allow_private=False)
    assert problem is not None
    if "2130706433" not in url:
        assert check_url(url, allow_private=True) is None


def test_public_endpoints_are_accepted() -> None:
    for url in (
        "https://hooks.example.com/refgate?x=1",
        "http://8.8.8.8:8080/h",
        "https://例え.jp/",
        "http://[64:ff9b::808:808]/h",  # NAT64 of 8.8.8.8
        "http://[2606:4700::1111]/h",
    ):
        assert check_url(url, allow_private=False) is None, url


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("https://ｅｘａｍｐｌｅ.com/hook", "https://example.com/hook"),
        ("https://straße.de/hook", "https://xn--strae-oqa.de/hook"),  # IDNA 2008: ß kept
        ("HTTPS://Hooks.Example.COM:8443/A?b=C", "https://hooks.example.com:8443/A?b=C"),
        ("https://例え.jp/", "https://xn--r8jz45g.jp/"),
        ("http://[2606:4700::1111]:81/h", "http://[2606:4700::1111]:81/h"),
    ],
)
def test_hosts_are_stored_as_the_name_both_checked_and_connected_to(
    typed: str, stored: str
) -> None:
    """The private-address check and urllib3 must look up the same name: one spelling, the
    ASCII form urllib3 connects to, is stored."""
    assert check_url(typed, allow_private=False) is None
    assert canonical_url(typed) == stored
    assert canonical_url(stored) == stored


def test_a_full_width_host_is_delivered_to(
    client: FlaskClient,
    keys: dict[str, str],
    services: Services,
    campaign: dict[str, Any],
    receiver: Receiver,
) -> None:
    created = register(
        client,
        keys["admin"],
        receiver,
        "/wide",
        "ｌｏｃａｌｈｏｓｔ",
        events=["conversion.created"],
    )
    assert created["url"] == receiver.url("/wide", "localhost")
    convert(client, keys, services, campaign, "bob")
    services.webhooks.run(time.time())
    (delivered,) = receiver.delivered("/wide")
    assert delivered["user_agent"] == USER_AGENT


def test_hanging_receivers_do_not_starve_the_others(
    client: FlaskClient,
    keys: dict[str, str],
    services: Services,
    campaign: dict[str, Any],
    receiver: Receiver,
) -> None:
    """Three receivers that hang and then fail, registered before a healthy one, with a run's
    time enough for two of them: the healthy one is served by the second run, and from then on
    first, while the failing ones take turns."""
    for n in range(3):
        register(client, keys["admin"], receiver, f"/hang{n}")
        receiver.slow_fail.add(f"/hang{n}")
    healthy = register(client, keys["admin"], receiver, "/healthy")
    services.webhooks.run_budget = SLOW * 1.5
    convert(client, keys, services, campaign, "bob")
    now = time.time()
    services.webhooks.run(now)
    services.webhooks.run(now + 1)
    assert len(receiver.delivered("/healthy")) == 2  # conversion.created, reward.credited
    # The failing ones took turns with the rest of the runs' time: each was tried.
    assert {r["path"] for r in receiver.requests} == {"/hang0", "/hang1", "/hang2", "/healthy"}
    convert(client, keys, services, campaign, "carol")
    services.webhooks.run(now + 2)
    assert len(receiver.delivered("/healthy")) == 4
    # Each attempt is logged at its own time, not its run's.
    log = services.webhooks.deliveries(healthy["id"])
    assert len({entry["at"] for entry in log}) == len(log)


def test_one_process_delivers_at_a_time(
    client: FlaskClient,
    keys: dict[str, str],
    services: Services,
    campaign: dict[str, Any],
    receiver: Receiver,
) -> None:
    register(client, keys["marketing"], receiver, "/one", events=["conversion.created"])
    convert(client, keys, services, campaign, "bob")
    lease = script("lease")
    # Another worker's run is still going (it outlived its scheduler lock): this one stands by.
    assert lease(services.store.main, [WEBHOOK_LEASE], ["other-worker", 60_000]) == 1
    assert services.webhooks.run(time.time()) == 0
    assert receiver.requests == []
    assert lease(services.store.main, [WEBHOOK_LEASE], ["other-worker", 0]) == 1
    assert services.webhooks.run(time.time()) == 1
    assert [r["type"] for r in receiver.delivered("/one")] == ["conversion.created"]


def test_a_rotated_secret_keeps_signing_beside_the_new_one_for_the_overlap(
    client: FlaskClient,
    keys: dict[str, str],
    services: Services,
    campaign: dict[str, Any],
    receiver: Receiver,
) -> None:
    endpoint = register(client, keys["marketing"], receiver, "/old", events=["conversion.created"])
    old_secret = receiver.secrets["/old"]
    path = f"/api/v1/webhooks/{endpoint['id']}/rotate-secret"
    before = time.time()
    rotated = client.post(path, headers=bearer(keys["marketing"]))  # no body: the default
    assert rotated.status_code == 200, rotated.json
    new_secret = rotated.json["secret"]
    assert new_secret.startswith("whsec_") and new_secret != old_secret
    assert before + 86400 <= rotated.json["previous_until"] <= time.time() + 86400
    assert rotated.json["rotated_at"] >= before
    shown = client.get(f"/api/v1/webhooks/{endpoint['id']}", headers=bearer(keys["admin"])).json
    assert "secret" not in shown and "previous_secret" not in shown

    # During the overlap a receiver still on the old secret and one on the new both verify.
    convert(client, keys, services, campaign, "bob")
    assert services.webhooks.run(time.time()) == 1
    first = receiver.requests[-1]
    assert first["valid"] and first["status"] == 200
    receiver.secrets["/old"] = new_secret
    convert(client, keys, services, campaign, "carol")
    assert services.webhooks.run(time.time()) == 1
    assert receiver.requests[-1]["valid"]

    # Rotating again with no overlap: only the newest secret signs from now on.
    again = client.post(path, json={"expire_previous_after": 0}, headers=bearer(keys["admin"])).json
    assert again["previous_until"] == 0
    convert(client, keys, services, campaign, "dave")
    services.webhooks.run(time.time())
    assert not receiver.requests[-1]["valid"]  # the receiver still holds the previous secret
    receiver.secrets["/old"] = again["secret"]
    services.webhooks.run(time.time() + 10_000)  # the retry, now verified
    assert receiver.requests[-1]["valid"] and receiver.requests[-1]["status"] == 200


def test_rotating_again_within_the_overlap_keeps_the_secret_receivers_hold(
    client: FlaskClient,
    keys: dict[str, str],
    services: Services,
    campaign: dict[str, Any],
    receiver: Receiver,
) -> None:
    # An integrator's rotation whose answer is lost (a timeout) and sent again: the receiver
    # still holds the original secret, and must keep verifying until that overlap ends.
    endpoint = register(
        client, keys["marketing"], receiver, "/twice", events=["conversion.created"]
    )
    original = receiver.secrets["/twice"]
    path = f"/api/v1/webhooks/{endpoint['id']}/rotate-secret"
    marketing = bearer(keys["marketing"])
    first = client.post(path, json={"expire_previous_after": 3600}, headers=marketing).json
    second = client.post(path, headers=marketing).json
    assert len({original, first["secret"], second["secret"]}) == 3

    convert(client, keys, services, campaign, "bob")
    assert services.webhooks.run(time.time()) == 1
    delivered = receiver.requests[-1]
    assert delivered["valid"] and delivered["status"] == 200  # under the original secret
    signature = delivered["headers"]["Refgate-Signature"]
    assert signature.count("v1=") == 3
    body = delivered["body"]
    for secret in (original, first["secret"], second["secret"]):
        assert verify(secret, signature, body, now=time.time())

    # Each old secret stops at the end of its own overlap: the original after its hour, the
    # first rotation's after the second's default day.
    hooked = services.webhooks.require(endpoint["id"])
    later = time.time() + 7200
    assert hooked.signing_secrets(later) == [second["secret"], first["secret"]]
    assert hooked.signing_secrets(time.time() + 2 * 86400) == [second["secret"]]

    # However often it is rotated, at most MAX_PREVIOUS_SECRETS old ones sign beside it, and an
    # overlap of 0 (a leaked secret) stops every old one at once.
    for _ in range(5):
        client.post(path, headers=marketing)
    current = services.webhooks.require(endpoint["id"])
    assert len(current.signing_secrets(time.time())) == 1 + MAX_PREVIOUS_SECRETS
    client.post(path, json={"expire_previous_after": 0}, headers=marketing)
    assert len(services.webhooks.require(endpoint["id"]).signing_secrets(time.time())) == 1


def test_rotation_refuses_bad_input_unknown_endpoints_and_other_roles(
    client: FlaskClient, keys: dict[str, str], services: Services, campaign: dict[str, Any]
) -> None:
    body = {"url": "https://hooks.example.com/refgate", "events": ["flag.raised"]}
    created = client.post("/api/v1/webhooks", json=body, headers=bearer(keys["marketing"]))
    endpoint = created.json["id"]
    path = f"/api/v1/webhooks/{endpoint}/rotate-secret"
    admin = bearer(keys["admin"])
    stored = services.webhooks.require(endpoint)
    for bad in (
        {"expire_previous_after": -1},
        {"expire_previous_after": 8 * 86400},
        {"expire_previous_after": "60"},
        {"overlap": 60},
    ):
        response = client.post(path, json=bad, headers=admin)
        assert response.status_code == 400, bad
        assert response.json["error"] == "validation_failed"
    not_json = client.post(path, data="[1]", headers={**admin, "Content-Type": "application/json"})
    assert not_json.status_code == 400
    assert services.webhooks.require(endpoint) == stored  # nothing changed
    missing = client.post("/api/v1/webhooks/wh_0000000000000000/rotate-secret", headers=admin)
    assert missing.status_code == 404 and missing.json["error"] == "webhook_not_found"
    for role in ("risk", "conversion"):
        assert client.post(path, headers=bearer(keys[role])).status_code == 403
    assert client.post(path).status_code == 401
    assert services.webhooks.require(endpoint) == stored


def test_a_receiver_accepts_any_matching_v1_and_refuses_odd_headers() -> None:
    from gateway.webhooks import sign

    body, now = b'{"id": "evt"}', time.time()
    header = sign(["whsec_new", "whsec_old"], int(now), body)
    assert header.count("v1=") == 2
    assert verify("whsec_new", header, body, now=now)
    assert verify("whsec_old", header, body, now=now)
    assert not verify("whsec_other", header, body, now=now)
    assert not verify("whsec_new", header, body + b" ", now=now)
    assert not verify("whsec_new", header, body, now=now + 301)  # too old
    assert not verify("whsec_new", f"t=1,{header}", body, now=now)  # two timestamps
    assert not verify("whsec_new", header.split(",", 1)[1], body, now=now)  # none


def test_a_disabled_endpoint_gets_nothing_until_enabled_again(
    client: FlaskClient,
    keys: dict[str, str],
    services: Services,
    campaign: dict[str, Any],
    receiver: Receiver,
) -> None:
    hook = register(client, keys["admin"], receiver, "/paused", events=["conversion.created"])
    url = f"/api/v1/webhooks/{hook['id']}"
    marketing = bearer(keys["marketing"])
    for bad in ({"disabled": "yes"}, {}, {"disabled": None}, {"disabled": True, "url": "x"}):
        assert client.patch(url, json=bad, headers=marketing).status_code == 400, bad
    assert (
        client.patch(url, json={"disabled": True}, headers=bearer(keys["risk"])).status_code == 403
    )
    missing = client.patch(
        "/api/v1/webhooks/wh_0000000000000000", json={"disabled": True}, headers=marketing
    )
    assert missing.status_code == 404
    paused = client.patch(url, json={"disabled": True}, headers=marketing)
    assert paused.status_code == 200 and paused.json["disabled"] is True
    convert(client, keys, services, campaign, "bob")
    services.webhooks.run(time.time())
    assert receiver.requests == []
    resumed = client.patch(url, json={"disabled": False}, headers=marketing)
    assert resumed.status_code == 200 and resumed.json["disabled"] is False
    services.webhooks.run(time.time())
    (delivered,) = receiver.delivered("/paused")
    assert delivered["payload"]["data"]["participant"] == "bob"


def closed(schema: Any) -> Any:
    """``schema`` with every object schema that lists its properties closed to any other
    (``additionalProperties: false``). The document leaves them open, so refgate may add a
    field without breaking a receiver's generated code; a test holds refgate to sending only
    what is documented. Overlays in ``allOf`` name no ``type`` and stay open."""
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    found = {key: closed(value) for key, value in schema.items()}
    if found.get("type") == "object" and "properties" in found:
        found.setdefault("additionalProperties", False)
    return found


def webhook_validators(document: dict[str, Any]) -> dict[str, Any]:
    """Per event: a validator of its delivered body, as the document's ``webhooks`` describe it
    (closed), and one per header parameter."""
    components = closed(document["components"])
    found = {}
    for event, item in document["webhooks"].items():
        operation = item["post"]
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        headers = {
            p["name"]: jsonschema_rs.Draft202012Validator(p["schema"])
            for p in operation["parameters"]
            if p["in"] == "header"
        }
        found[event] = (
            jsonschema_rs.Draft202012Validator({**body, "components": components}),
            headers,
        )
    return found


def test_every_event_delivered_matches_its_schema_in_the_openapi_document(
    client: FlaskClient,
    keys: dict[str, str],
    services: Services,
    campaign: dict[str, Any],
    receiver: Receiver,
) -> None:
    """Every event refgate emits, each reward event in both its shapes (decided at the
    conversion, with ``depth``; moved by a flag or review, with ``flag``), delivered for real
    and validated against the served document: code and schema cannot drift apart."""
    register(client, keys["marketing"], receiver, "/all")
    risk = bearer(keys["risk"])

    def raise_flag(kind: str, subject: str, members: tuple[str, ...] = ()) -> str:
        candidate = FlagCandidate(kind, subject, 0.9, ("ring",), members)
        flag, new = services.flags.raise_flag(campaign["id"], "milk-tea", candidate, time.time())
        assert new
        return flag.id

    def decide(flag_id: str, decision: str) -> None:
        path = f"/api/v1/flags/{flag_id}/decision"
        response = client.post(path, json={"decision": decision}, headers=risk)
        assert response.status_code == 200, response.json

    convert(client, keys, services, campaign, "bob")  # credited at the conversion
    alice = raise_flag("referrer", "alice")  # bob's reward held by the flag
    decide(alice, "legit")  # released: credited by a review
    decide(alice, "fraud")  # clawed back
    convert(client, keys, services, campaign, "carol")  # denied at the conversion
    decide(alice, "legit")  # bob's paid back; carol's stays denied (referrer_fraud)
    dave = raise_flag("referrer", "dave")
    convert(client, keys, services, campaign, "erin", referrer="dave")  # held at the conversion
    decide(dave, "fraud")  # erin's held reward denied by a review
    raise_flag("cluster", "household-1", ("mallory", "trent"))
    run_until_idle(services, time.time())

    document = client.get("/api/v1/openapi.json").json
    validators = webhook_validators(document)
    envelope = jsonschema_rs.Draft202012Validator(
        {"$ref": "#/components/schemas/WebhookEnvelope", "components": document["components"]}
    )
    delivered = receiver.delivered("/all")
    assert {r["type"] for r in delivered} == set(EVENTS)
    shapes = set()
    for request in delivered:
        payload = request["payload"]
        body, headers = validators[request["type"]]
        problems = [f"{e.instance_path}: {e.message}" for e in body.iter_errors(payload)]
        assert not problems, (payload, problems)
        assert envelope.is_valid(payload)
        for name, header in headers.items():
            value = request["headers"][name]
            assert header.is_valid(int(value) if name.endswith("Attempt") else value), (name, value)
        if request["type"].startswith("reward."):
            shapes.add((request["type"], "depth" if "depth" in payload["data"] else "flag"))
    assert shapes == {
        ("reward.credited", "depth"),
        ("reward.credited", "flag"),
        ("reward.held", "depth"),
        ("reward.held", "flag"),
        ("reward.denied", "depth"),
        ("reward.denied", "flag"),
        ("reward.clawed_back", "flag"),
    }

    # The validators do catch drift: a field refgate would add, one it would drop, a status
    # the event does not carry, both shapes at once.
    body = {r["type"]: r["payload"] for r in delivered}
    clawed, raised = body["reward.clawed_back"], body["flag.raised"]
    data = clawed["data"]
    for event, drifted in (
        ("reward.clawed_back", {**clawed, "extra": 1}),
        ("reward.clawed_back", {**clawed, "data": {**data, "note": ""}}),
        ("reward.clawed_back", {**clawed, "data": {k: v for k, v in data.items() if k != "flag"}}),
        ("reward.clawed_back", {**clawed, "data": {**data, "depth": 1}}),
        ("reward.clawed_back", {**clawed, "data": {**data, "reward": {**data["reward"], "x": 0}}}),
        ("reward.credited", {**clawed, "type": "reward.credited"}),
        ("flag.raised", {**raised, "data": {**raised["data"], "kind": "household"}}),
        ("flag.raised", {**raised, "data": {**raised["data"], "score": "0.9"}}),
    ):
        assert not validators[event][0].is_valid(drifted), (event, drifted)


def _readme_verifier() -> Any:
    """The receiver's ``verify`` as README shows it (the one Python block of its Webhooks
    section), so what integrators copy is what these tests run."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.partition("\n## Webhooks\n")[2].partition("\n## ")[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "README's Webhooks section shows one Python verifier"
    namespace: dict[str, Any] = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)  # noqa: S102 - our own README
    return namespace["verify"]


def test_the_readme_verifier_accepts_real_deliveries_and_refuses_tampering(
    client: FlaskClient,
    keys: dict[str, str],
    services: Services,
    campaign: dict[str, Any],
    receiver: Receiver,
) -> None:
    readme_verify = _readme_verifier()
    register(client, keys["marketing"], receiver, "/copied", events=["conversion.created"])
    secret = receiver.secrets["/copied"]
    convert(client, keys, services, campaign, "bob")
    assert services.webhooks.run(time.time()) == 1
    delivered = receiver.requests[-1]
    header, body = delivered["headers"]["Refgate-Signature"], delivered["body"]
    assert readme_verify(secret, header, body)
    assert readme_verify(secret, header.replace(",", ", "), body)  # spaces after commas
    assert not readme_verify(secret.removeprefix("whsec_"), header, body)  # the whole secret
    assert not readme_verify(secret, header, body.replace(b"bob", b"eve"))
    reencoded = json.dumps(json.loads(body)).encode()  # parsed and dumped again: other bytes
    assert not readme_verify(secret, header, reencoded)
    # A delivery captured and replayed later than the tolerance is refused, even well signed.
    old = int(time.time()) - 301
    assert not readme_verify(secret, sign(secret, old, body), body)
    assert readme_verify(secret, sign(secret, old + 2, body), body)
    for broken in ("", "t=,v1=00", "v1=" + "0" * 64, f"t={old + 2}", "t=1,t=2,v1=0"):
        assert not readme_verify(secret, broken, body)
