"""The staff console: accounts, sessions, CSRF, lockout, audit, every route against every role,
and the marketing and risk pages doing what the API does."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from gateway.flags import FlagCandidate
from gateway.platforms import PLATFORM_KEYS
from gateway.platformwatch import BlockAlert
from gateway.services import Services
from gateway.stats import campaign_stats
from gateway.store import keys
from gateway.users import ACCOUNT_LIMIT, LOCKOUT_SECONDS, NETWORK_LIMIT, PAIR_LIMIT
from tests.console_helpers import (
    PASSWORD,
    add_staff,
    as_role,
    csrf_of,
    email,
    flagged_campaign,
    login,
    token,
)
from tests.test_conversions import record_click

EN = {"Accept-Language": "en"}


@pytest.fixture
def staff(services: Services) -> None:
    add_staff(services)


# -- accounts and the command line ---------------------------------------------------------------


def test_user_commands(runner: FlaskCliRunner, services: Services) -> None:
    added = runner.invoke(
        args=["user", "add", "Ann@Example.com", "--role", "marketing"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert added.exit_code == 0, added.output
    assert "ann@example.com (marketing)" in added.output
    stored = services.store.main.hget("rg:staff-users", "ann@example.com")
    assert stored and PASSWORD.encode() not in stored  # only a hash
    assert services.users.verify("ann@example.com", PASSWORD) is not None
    from_stdin = runner.invoke(
        args=["user", "add", "bob@example.com", "--role", "risk", "--password-stdin"],
        input=f"{PASSWORD}\n",
    )
    assert from_stdin.exit_code == 0, from_stdin.output
    listed = runner.invoke(args=["user", "list"])
    assert listed.output.splitlines() == [
        "ann@example.com\tmarketing\tactive",
        "bob@example.com\trisk\tactive",
    ]
    assert runner.invoke(args=["user", "disable", "bob@example.com"]).exit_code == 0
    assert services.users.verify("bob@example.com", PASSWORD) is None
    assert "bob@example.com\trisk\tdisabled" in runner.invoke(args=["user", "list"]).output
    reset = runner.invoke(
        args=["user", "reset", "ann@example.com", "--password-stdin"], input="a new long secret\n"
    )
    assert reset.exit_code == 0, reset.output
    assert services.users.verify("ann@example.com", "a new long secret") is not None
    actions = [e.action for e in services.audit.recent()]
    assert actions == ["user.reset", "user.disable", "user.add", "user.add"]


def test_user_commands_reject_bad_input(runner: FlaskCliRunner, services: Services) -> None:
    def run(*args: str, input: str = f"{PASSWORD}\n") -> Any:
        return runner.invoke(args=["user", *args], input=input)

    assert run("add", "x@example.com", "--role", "root", "--password-stdin").exit_code == 2
    bad_email = run("add", "not-an-email", "--role", "risk", "--password-stdin")
    assert bad_email.exit_code == 2 and "email" in bad_email.output
    short = run("add", "x@example.com", "--role", "risk", "--password-stdin", input="short\n")
    assert short.exit_code == 2 and "password" in short.output
    empty = run("add", "x@example.com", "--role", "risk", "--password-stdin", input="")
    assert empty.exit_code == 2 and "standard input" in empty.output
    assert run("add", "x@example.com", "--role", "risk", "--password-stdin").exit_code == 0
    again = run("add", "X@example.com", "--role", "admin", "--password-stdin")
    assert again.exit_code == 2 and "already" in again.output
    assert services.users.require("x@example.com").role == "risk"  # nothing lost
    missing = run("disable", "nobody@example.com")
    assert missing.exit_code == 1 and "no account" in missing.output
    assert run("reset", "nobody@example.com", "--password-stdin").exit_code == 1


# -- sessions --------------------------------------------------------------------------------------


def test_login_sets_a_safe_session_cookie_and_logout_ends_it(app: Flask, staff: None) -> None:
    client = app.test_client()
    response = login(client, "marketing")
    assert response.status_code == 302 and response.location == "/console/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" in cookie  # the public URL is https in the tests
    assert client.get("/console/campaigns").status_code == 200
    client.post("/console/logout", data={"csrf_token": token(client)})
    after = client.get("/console/campaigns")
    assert after.status_code == 302 and after.location.startswith("/console/login")


def test_signing_out_ends_the_session_for_a_copy_of_its_cookie_too(app: Flask, staff: None) -> None:
    """The session lived only in its signed cookie: a copy taken before signing out (a shared
    computer, a proxy's log) still opened the admin's pages afterwards, for 31 days."""
    client = app.test_client()
    assert login(client, "admin").status_code == 302
    name = app.config["SESSION_COOKIE_NAME"]
    cookie = client.get_cookie(name)
    assert cookie is not None
    copy = app.test_client()
    copy.set_cookie(name, cookie.value, domain=cookie.domain)
    assert copy.get("/console/admin/users").status_code == 200
    client.post("/console/logout", data={"csrf_token": token(client)})
    after = copy.get("/console/admin/users")
    assert after.status_code == 302 and after.location.startswith("/console/login")
    # Another session of the same account is its own: signing out of one leaves it open.
    other = app.test_client()
    assert login(other, "admin").status_code == 302
    third = app.test_client()
    assert login(third, "admin").status_code == 302
    third.post("/console/logout", data={"csrf_token": token(third)})
    assert other.get("/console/admin/users").status_code == 200


def test_a_session_lasts_a_working_day(app: Flask, services: Any, staff: None) -> None:
    """Its record in the store expires after 12 hours, and so does the cookie's signature
    (Flask's default accepted cookies for 31 days)."""
    from datetime import timedelta

    from gateway.store import keys as store_keys

    assert app.permanent_session_lifetime == timedelta(hours=12)
    client = app.test_client()
    assert login(client, "risk").status_code == 302
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    kept = store_keys.console_session(serializer.loads(cookie.value)["rg_session"])
    ttl = services.store.main.ttl(kept)
    assert 12 * 3600 - 60 < ttl <= 12 * 3600
    services.store.main.delete(kept)  # what expiry does
    after = client.get("/console/flags")
    assert after.status_code == 302 and after.location.startswith("/console/login")


def test_a_signing_key_rotation_keeps_staff_signed_in(
    tmp_path: Any, store_url: str, app: Flask, staff: None
) -> None:
    """A new key prepended to REFGATE_SECRET_KEYS (README: how keys rotate): the console's
    sessions signed with the former newest key still hold, in the restarted server."""
    from tests.conftest import TEST_KEYS, make_app, services_of

    before = app.test_client()
    assert login(before, "risk").status_code == 302
    # A form open when the keys rotate (a reviewer's note half written) is sent afterwards.
    form_token = token(before)
    name = app.config["SESSION_COOKIE_NAME"]
    cookie = before.get_cookie(name)
    assert cookie is not None

    rotated = make_app(
        tmp_path / "rotated",
        store_url,
        REFGATE_SECRET_KEYS=f"rotated-key-0123456789abcdef,{TEST_KEYS}",
    )
    try:
        after = rotated.test_client()
        after.set_cookie(name, cookie.value, domain=cookie.domain)
        assert after.get("/console/flags").status_code == 200
        # New forms are signed with the new key; the one opened before still goes through.
        assert token(after) != form_token
        sent = after.post("/console/logout", data={"csrf_token": form_token})
        assert sent.status_code == 302 and sent.location.startswith("/console/login")
        assert after.get("/console/flags").location.startswith("/console/login")
        # A key that is not listed any more signs nobody in.
        dropped = make_app(
            tmp_path / "dropped", store_url, REFGATE_SECRET_KEYS="rotated-key-0123456789abcdef"
        )
        try:
            gone = dropped.test_client()
            gone.set_cookie(name, cookie.value, domain=cookie.domain)
            response = gone.get("/console/flags")
            assert response.status_code == 302 and response.location.startswith("/console/login")
        finally:
            services_of(dropped).close()
    finally:
        services_of(rotated).close()


def test_no_secure_flag_over_plain_http(tmp_path: Any, store_url: str) -> None:
    from tests.conftest import make_app, services_of

    app = make_app(tmp_path / "d", store_url, REFGATE_PUBLIC_URL="http://127.0.0.1:8080")
    try:
        add_staff(services_of(app))
        cookie = login(app.test_client(), "risk").headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "Secure" not in cookie
    finally:
        services_of(app).close()


def test_disabling_or_resetting_ends_sessions(app: Flask, services: Services, staff: None) -> None:
    client = as_role(app, "risk")
    assert client.get("/console/flags").status_code == 200
    services.users.reset_password(email("risk"), "another long password")
    assert client.get("/console/flags").status_code == 302
    client = app.test_client()
    assert login(client, "risk", "another long password").status_code == 302
    services.users.set_disabled(email("risk"), True)
    assert client.get("/console/flags").status_code == 302
    assert login(app.test_client(), "risk", "another long password").status_code == 401


def test_login_redirects_only_inside_the_console(app: Flask, staff: None) -> None:
    for target, expected in [
        ("/console/flags", "/console/flags"),
        ("https://evil.example/", "/console/"),
        ("//evil.example/console/", "/console/"),
        ("/api/v1/campaigns", "/console/"),
    ]:
        client = app.test_client()
        page = client.get("/console/login")
        response = client.post(
            "/console/login",
            query_string={"next": target},
            data={"email": email("risk"), "password": PASSWORD, "csrf_token": csrf_of(page.text)},
        )
        assert response.location == expected, target


# -- CSRF ------------------------------------------------------------------------------------------


def test_every_form_needs_the_csrf_token(app: Flask, services: Services, staff: None) -> None:
    client = app.test_client()
    page = client.get("/console/login")
    missing = client.post(
        "/console/login", data={"email": email("admin"), "password": PASSWORD}, headers=EN
    )
    assert missing.status_code == 400 and "security token" in missing.text
    forged = client.post(
        "/console/login",
        data={"email": email("admin"), "password": PASSWORD, "csrf_token": "forged"},
    )
    assert forged.status_code == 400
    assert login(client, "admin").status_code == 302
    assert csrf_of(page.text)
    # Signed in, a form posted without the token (a cross-site request) changes nothing.
    refused = client.post(
        "/console/admin/users",
        data={"email": "new@example.com", "role": "admin", "password": PASSWORD},
        headers=EN,
    )
    assert refused.status_code == 400 and "security token" in refused.text
    assert services.users.get("new@example.com") is None
    # Another session's token is not this session's.
    other = app.test_client()
    other_token = csrf_of(other.get("/console/login").text)
    assert (
        client.post(
            "/console/admin/users",
            data={
                "email": "new@example.com",
                "role": "admin",
                "password": PASSWORD,
                "csrf_token": other_token,
            },
        ).status_code
        == 400
    )
    assert services.users.get("new@example.com") is None
    accepted = client.post(
        "/console/admin/users",
        data={
            "email": "new@example.com",
            "role": "admin",
            "password": PASSWORD,
            "csrf_token": token(client),
        },
    )
    assert accepted.status_code == 302 and services.users.get("new@example.com") is not None


# -- lockout -----------------------------------------------------------------------------------------


def test_lockout_is_per_account_and_network_so_the_owner_elsewhere_gets_in(
    app: Flask, services: Services, staff: None
) -> None:
    """Five wrong passwords once locked the account from anywhere: anyone who knew a staff
    member's email could keep them out for good. Only the failing network is locked now."""
    attacker = {"REMOTE_ADDR": "198.51.100.7"}
    for _ in range(PAIR_LIMIT):
        assert (
            login(app.test_client(), "marketing", "wrong password", **attacker).status_code == 401
        )
    # The attacker's network is refused even with the right password...
    locked = login(app.test_client(), "marketing", **attacker)
    assert locked.status_code == 429 and "account from your network" in locked.text
    # ...while the owner on another network, and other accounts on the attacker's, get in.
    assert login(app.test_client(), "marketing", REMOTE_ADDR="192.0.2.1").status_code == 302
    assert login(app.test_client(), "risk", **attacker).status_code == 302
    assert login(app.test_client(), "marketing", **attacker).status_code == 429
    actions = [e.action for e in services.audit.recent()]
    assert actions.count("login.failed") == PAIR_LIMIT
    assert "login.refused" in actions
    # The lockout lasts the window: its counter expires then (deleted here, as expiry would).
    network = services.audit.network_hash("198.51.100.7")
    pair = keys.login_failures("p", f"{network}:{email('marketing')}")
    assert 0 < services.store.main.ttl(pair) <= LOCKOUT_SECONDS
    services.store.main.delete(pair)
    assert login(app.test_client(), "marketing", **attacker).status_code == 302


def test_lockout_per_account_against_guessing_from_many_networks(
    app: Flask, services: Services, staff: None
) -> None:
    for n in range(ACCOUNT_LIMIT - 1):
        address = {"REMOTE_ADDR": f"198.51.{n}.7"}  # a network each: only the account counts
        assert login(app.test_client(), "marketing", "wrong", **address).status_code == 401
    # The owner signing in does not wipe the account-wide count (it would reopen the guessing).
    assert login(app.test_client(), "marketing", REMOTE_ADDR="192.0.2.1").status_code == 302
    assert (
        login(app.test_client(), "marketing", "wrong", REMOTE_ADDR="198.51.99.7").status_code == 401
    )
    locked = login(app.test_client(), "marketing", REMOTE_ADDR="192.0.2.1")
    assert locked.status_code == 429 and "for this account." in locked.text
    # Other accounts are not affected.
    assert login(app.test_client(), "risk", REMOTE_ADDR="192.0.2.1").status_code == 302


def test_lockout_per_network(app: Flask, services: Services, staff: None) -> None:
    for n in range(NETWORK_LIMIT):
        client = app.test_client()
        page = client.get("/console/login")
        response = client.post(
            "/console/login",
            data={
                "email": f"guess{n}@staff.example.com",
                "password": "x",
                "csrf_token": csrf_of(page.text),
            },
            environ_base={"REMOTE_ADDR": f"203.0.113.{n}"},
        )
        assert response.status_code == 401
    same_network = login(app.test_client(), "admin", REMOTE_ADDR="203.0.113.250")
    assert same_network.status_code == 429 and "network" in same_network.text
    assert login(app.test_client(), "admin", REMOTE_ADDR="198.51.100.1").status_code == 302


def test_logins_refused_by_a_lockout_do_not_flood_the_audit_log(
    app: Flask, services: Services, staff: None
) -> None:
    """Each refused login was an audit entry: a locked account or network could be sent
    attempts without end (each costs nothing, the lockout answers before any password check),
    and the capped log lost the staff's actions to them. One entry a lockout window now."""
    client = app.test_client()
    for _ in range(PAIR_LIMIT):
        assert login(client, "marketing", "wrong", REMOTE_ADDR="198.51.100.7").status_code == 401
    for n in range(30):
        assert login(client, "marketing", "wrong", REMOTE_ADDR=f"198.51.100.{n}").status_code == 429
    for n in range(NETWORK_LIMIT):
        page = client.get("/console/login")
        client.post(
            "/console/login",
            data={
                "email": f"g{n}@x.example.com",
                "password": "x",
                "csrf_token": csrf_of(page.text),
            },
            environ_base={"REMOTE_ADDR": "203.0.113.9"},
        )
    for n in range(30):
        page = client.get("/console/login")
        refused = client.post(
            "/console/login",
            data={
                "email": f"h{n}@x.example.com",
                "password": "x",
                "csrf_token": csrf_of(page.text),
            },
            environ_base={"REMOTE_ADDR": "203.0.113.9"},
        )
        assert refused.status_code == 429
    entries = [e for e in services.audit.recent(limit=1000) if e.action == "login.refused"]
    assert sorted(e.detail["locked"] for e in entries) == ["network", "pair"], entries


# -- the audit log -------------------------------------------------------------------------------------


def test_audit_log_records_who_what_when_and_a_hashed_where(
    app: Flask, services: Services, staff: None
) -> None:
    admin = as_role(app, "admin")
    admin.post(
        "/console/admin/apikeys",
        data={"name": "crm", "role": "marketing", "csrf_token": token(admin)},
    )
    entries = services.audit.recent()
    assert [e.action for e in entries[:2]] == ["apikey.create", "login"]
    created = entries[0]
    assert created.actor == "user:admin@staff.example.com"
    assert created.detail == {"name": "crm", "role": "marketing"}
    assert created.network == "127.0.0.0/24"
    assert created.ip_hash and "127.0.0.1" not in created.ip_hash
    raw = services.store.main.xrange("rg:audit")
    assert all(b"127.0.0.1" not in v for _, fields in raw for v in fields.values())
    page = admin.get("/console/admin/audit", headers=EN)
    assert page.status_code == 200 and "apikey.create" in page.text
    assert as_role(app, "risk").get("/console/admin/audit").status_code == 403
    assert admin.get("/console/admin/audit?before=junk").status_code == 400


def test_admin_manages_users_and_api_keys(app: Flask, services: Services, staff: None) -> None:
    admin = as_role(app, "admin")
    bad = admin.post(
        "/console/admin/users",
        data={"email": "nope", "role": "risk", "password": PASSWORD, "csrf_token": token(admin)},
        headers=EN,
    )
    assert bad.status_code == 400 and "not an email address" in bad.text
    short = admin.post(
        "/console/admin/users",
        data={
            "email": "c@example.com",
            "role": "risk",
            "password": "x",
            "csrf_token": token(admin),
        },
    )
    assert short.status_code == 400 and services.users.get("c@example.com") is None
    change = admin.post(
        f"/console/admin/users/{email('risk')}",
        data={"action": "role", "role": "marketing", "csrf_token": token(admin)},
    )
    assert change.status_code == 302 and services.users.require(email("risk")).role == "marketing"
    own = admin.post(
        f"/console/admin/users/{email('admin')}",
        data={"action": "disable", "csrf_token": token(admin)},
    )
    assert own.status_code == 400 and not services.users.require(email("admin")).disabled
    created = admin.post(
        "/console/admin/apikeys",
        data={"name": "crm", "role": "marketing", "csrf_token": token(admin)},
    )
    key = re.search(r'<code id="new-key">(rgk_[^<]+)</code>', created.text)
    assert key and created.headers["Cache-Control"] == "no-store"
    assert (
        app.test_client()
        .get("/api/v1/campaigns", headers={"Authorization": f"Bearer {key.group(1)}"})
        .status_code
        == 200
    )
    key_id = services.api_keys.list()[0].id
    admin.post(f"/console/admin/apikeys/{key_id}/disable", data={"csrf_token": token(admin)})
    assert services.api_keys.list()[0].disabled
    assert (
        admin.post(
            "/console/admin/apikeys", data={"name": "x", "role": "root", "csrf_token": token(admin)}
        ).status_code
        == 400
    )


# -- every route against every role ---------------------------------------------------------------


def route_matrix(
    services: Services,
    flag_id: str,
    key_id: str,
    webhook_id: str = "wh_0123456789abcdef",
    link: str = "t0123456789",
) -> list[tuple[str, str, set[str]]]:
    """(method, path, roles allowed); admin is allowed everywhere."""
    marketing, risk, staff = {"marketing"}, {"risk"}, {"marketing", "risk"}
    hook = f"/console/webhooks/{webhook_id}"
    return [
        ("GET", "/console/", staff),
        ("GET", "/console/settings", staff),
        ("POST", "/console/settings", staff),
        ("GET", "/console/campaigns", staff),
        ("GET", "/console/campaigns/new", marketing),
        ("POST", "/console/campaigns/new", marketing),
        ("GET", "/console/campaigns/tea", staff),
        ("GET", "/console/campaigns/tea/edit", marketing),
        ("POST", "/console/campaigns/tea/edit", marketing),
        ("POST", "/console/campaigns/tea/action", marketing),
        ("POST", "/console/campaigns/tea/platforms/wechat", staff),
        ("GET", "/console/campaigns/tea/links", marketing),
        ("POST", "/console/campaigns/tea/links", marketing),
        ("GET", f"/console/campaigns/tea/links/{link}/poster.png", marketing),
        ("GET", "/console/campaigns/tea/tree", staff),
        ("GET", "/console/campaigns/tea/people/farmer", staff),
        ("GET", "/console/people?name=farmer", staff),
        ("GET", "/console/flags", risk),
        ("GET", f"/console/flags/{flag_id}", risk),
        ("POST", f"/console/flags/{flag_id}/decision", risk),
        ("POST", "/console/flags/decisions", risk),
        ("GET", "/console/webhooks", marketing),
        ("POST", "/console/webhooks", marketing),
        ("GET", hook, marketing),
        ("GET", f"{hook}/delete", marketing),
        ("POST", f"{hook}/action", marketing),
        ("POST", f"{hook}/edit", marketing),
        ("POST", f"{hook}/rotate", marketing),
        ("POST", f"{hook}/redeliver", marketing),
        ("POST", f"{hook}/delete", marketing),
        ("GET", "/console/admin/users", set()),
        ("POST", "/console/admin/users", set()),
        ("POST", f"/console/admin/users/{email('marketing')}", set()),
        ("GET", "/console/admin/apikeys", set()),
        ("POST", "/console/admin/apikeys", set()),
        ("POST", f"/console/admin/apikeys/{key_id}/disable", set()),
        ("GET", "/console/admin/audit", set()),
    ]


def test_the_matrix_covers_every_console_route(app: Flask, services: Services) -> None:
    listed = {(m, p.split("?")[0]) for m, p, _ in route_matrix(services, "1-0123456789", "k")}
    adapter = app.url_map.bind("localhost")
    covered = set()
    for method, path in listed:
        endpoint, _ = adapter.match(path, method=method)
        covered.add((method, endpoint))
    public = {("GET", "console.login"), ("POST", "console.login"), ("POST", "console.logout")}
    routes = {
        (method, rule.endpoint)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("console.")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    assert routes - public == covered


@pytest.mark.parametrize("role", ["anonymous", "admin", "marketing", "risk"])
def test_every_console_route_against_every_role(
    app: Flask, services: Services, staff: None, role: str
) -> None:
    _, flag = flagged_campaign(services)
    _, key = services.api_keys.create("matrix", "risk")
    hook, _ = services.webhooks.create(
        {"url": "https://hooks.example.com/matrix", "events": ["flag.raised"]}, "test"
    )
    client = as_role(app, role)
    form = {"csrf_token": token(client)}
    link = services.links.mint(services.campaigns.require("tea"), "farmer")
    for method, path, allowed in route_matrix(services, flag.id, key.id, hook.id, link.token):
        response = client.open(path, method=method, data=form if method == "POST" else None)
        if role == "anonymous":
            assert response.status_code == 302, (method, path)
            assert response.location.startswith("/console/login?next="), (method, path)
        elif role == "admin" or role in allowed:
            assert response.status_code not in (401, 403), (method, path, role)
            assert response.status_code < 500, (method, path, role)
        else:
            assert response.status_code == 403, (method, path, role, response.status_code)
        assert "Content-Security-Policy" in response.headers, (method, path)
    # The login page itself is public.
    assert app.test_client().get("/console/login").status_code == 200


def test_security_headers_on_every_page(app: Flask, staff: None) -> None:
    client = as_role(app, "admin")
    page = client.get("/console/campaigns")
    csp = page.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp)
    assert nonce and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    scripts = re.findall(r"<script([^>]*)>", page.text)
    assert scripts and all(f'nonce="{nonce.group(1)}"' in s for s in scripts)
    assert " style=" not in page.text
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "same-origin"
    again = client.get("/console/campaigns").headers["Content-Security-Policy"]
    assert again != csp  # a fresh nonce per response
    # The console's hooks are its own: the API and the click path's pages carry none of them.
    assert "Content-Security-Policy" not in client.get("/api/v1/openapi.json").headers


# -- marketing -------------------------------------------------------------------------------------


def campaign_form(**fields: str) -> dict[str, str]:
    return {
        "slug": "spring-tea",
        "name": "春节奶茶",
        "destination_url": "https://shop.example.com/landing",
        "starts_at": "",
        "ends_at": "",
        "link_ttl_days": "14",
        "reward.amount": "1",
        "reward.budget_total": "1000",
        "reward.max_per_referrer": "",
        "reward.max_per_day": "",
        "share_text": "",
        "poster.title": "",
        "poster.text": "",
        **fields,
    }


def field_errors(html: str) -> dict[str, str]:
    return dict(re.findall(r'<p class="field-error" id="e-([^"]+)">([^<]*)</p>', html))


def test_campaign_form_shows_errors_next_to_fields_and_loses_nothing(
    app: Flask, services: Services, staff: None
) -> None:
    client = as_role(app, "marketing")
    form = campaign_form(
        destination_url="javascript:alert(1)",
        link_ttl_days="ten",
        ends_at="2026-01-01T00:00:00+08:00",
        starts_at="2026-02-01T00:00:00+08:00",
    )
    response = client.post(
        "/console/campaigns/new", data={**form, "csrf_token": token(client)}, headers=EN
    )
    # Every problem at once: the form's own (a whole number), the fields' (the dates) and the
    # destination's, not one stage per submission.
    assert response.status_code == 400
    assert field_errors(response.text) == {
        "link_ttl_days": "a whole number",
        "destination_url": "must be an absolute http:// or https:// URL",
        "ends_at": "must be after starts_at",
    }
    assert 'value="javascript:alert(1)"' in response.text  # what was typed stays
    response = client.post(
        "/console/campaigns/new",
        data={**form, "name": " ", "reward.budget_total": "-5", "csrf_token": token(client)},
        headers=EN,
    )
    assert response.status_code == 400
    errors = field_errors(response.text)
    assert errors["reward.budget_total"] == "0 or more"  # not "a whole number": -5 is one
    assert errors["name"] == "must not be blank"
    assert "reward" not in errors  # the reward left out for its bad number is no extra problem
    response = client.post(
        "/console/campaigns/new",
        data={**form, "link_ttl_days": "14", "ends_at": "", "csrf_token": token(client)},
        headers=EN,
    )
    assert response.status_code == 400
    assert list(field_errors(response.text)) == ["destination_url"]
    assert services.campaigns.get("spring-tea") is None
    bad_slug = client.post(
        "/console/campaigns/new",
        data={**campaign_form(slug="Not A Slug"), "csrf_token": token(client)},
    )
    assert bad_slug.status_code == 400 and "slug" in field_errors(bad_slug.text)
    created = client.post(
        "/console/campaigns/new",
        data={**campaign_form(share_text="转发得红包 {url}"), "csrf_token": token(client)},
        headers=EN,
    )
    assert created.status_code == 302 and created.location.endswith("/edit?saved=1")
    saved = services.campaigns.require("spring-tea")
    assert saved.reward and saved.reward.budget_total == 1000
    assert saved.created_by == "user:marketing@staff.example.com"
    page = client.get(created.location, headers=EN)
    assert "Copy check:" in page.text and "转发得" in page.text
    taken = client.post(
        "/console/campaigns/new", data={**campaign_form(), "csrf_token": token(client)}
    )
    assert taken.status_code == 409 and "slug" in field_errors(taken.text)
    edited = client.post(
        "/console/campaigns/spring-tea/edit",
        data={**campaign_form(name="Spring tea", share_text=""), "csrf_token": token(client)},
    )
    assert edited.status_code == 302
    assert services.campaigns.require("spring-tea").name == "Spring tea"
    assert services.campaigns.require("spring-tea").version == 2


def test_campaign_page_and_minting(app: Flask, services: Services, staff: None) -> None:
    doc, _ = flagged_campaign(services)
    client = as_role(app, "marketing")
    page = client.get("/console/campaigns/tea", headers=EN)
    assert page.status_code == 200
    assert page.text.count("<svg") == 3 and "Clicks per hour" in page.text
    assert page.text.count("No data yet.") == 1  # no fallback pages were shown
    assert "Budget held" in page.text
    # Platforms by their names in the reader's language, not their keys: the charts and a
    # "possible block" alert.
    alert = BlockAlert("tea", "wechat", time.time(), 0.4, 0.05, 400, 3)
    services.store.main.hset(keys.campaign_keys(doc["id"]).alerts, "wechat", alert.to_json())
    chinese = client.get("/console/campaigns/tea", headers={"Accept-Language": "zh-CN"}).text
    assert "微信：近几小时点击占比从 40.0% 降到 5.0%。" in chinese
    platforms = services.campaigns.require("tea")
    assert campaign_stats(services.store.main, platforms)["platforms"], "no clicks to chart"
    charts = re.findall(r'text-anchor="end" font-size="12">([^<]+)<', chinese)
    assert charts and not set(charts) & set(PLATFORM_KEYS), charts
    listing = client.get("/console/campaigns", headers=EN)
    assert "Tea" in listing.text
    minted = client.post(
        "/console/campaigns/tea/links",
        data={"referrer": "alice", "csrf_token": token(client)},
        headers=EN,
    )
    assert minted.status_code == 200
    poster = re.search(r'id="download-poster" href="([^"]+)"', minted.text)
    assert poster
    image = client.get(poster.group(1))
    assert image.status_code == 200 and image.headers["Content-Type"] == "image/png"
    services.campaigns.set_platform("tea", "wechat", {"status": "blocked"}, "test")
    on_wechat = client.post(
        "/console/campaigns/tea/links",
        data={"referrer": "bob", "platform": "wechat", "csrf_token": token(client)},
        headers=EN,
    )
    assert on_wechat.status_code == 200 and 'id="share-mode"' in on_wechat.text
    unknown = client.post(
        "/console/campaigns/tea/links",
        data={"referrer": "bob", "platform": "myspace", "csrf_token": token(client)},
    )
    assert unknown.status_code == 400 and "platform" in field_errors(unknown.text)
    bad = client.post(
        "/console/campaigns/tea/links",
        data={"referrer": "no spaces allowed", "csrf_token": token(client)},
    )
    assert bad.status_code == 400 and "referrer" in field_errors(bad.text)
    blocked = client.post(
        "/console/campaigns/tea/platforms/wechat",
        data={"status": "blocked", "note": "seen", "csrf_token": token(client)},
    )
    assert blocked.status_code == 302
    # The platform refuses the campaign's links: said as its buttons say it (屏蔽 in Chinese,
    # not the 拦截 of a click refgate blocked).
    page = client.get("/console/campaigns/tea", headers=EN).text
    assert '<span class="status status-blocked">links blocked</span> — seen' in page
    zh = client.get("/console/campaigns/tea", headers={"Accept-Language": "zh-CN"}).text
    assert '<span class="status status-blocked">链接被屏蔽</span> — seen' in zh
    assert "标记为未屏蔽" in zh and "被拦截" not in zh
    assert services.campaigns.require("tea").platforms["wechat"].set_by == (
        "user:marketing@staff.example.com"
    )
    bad_status = client.post(
        "/console/campaigns/tea/platforms/wechat",
        data={"status": "maybe", "csrf_token": token(client)},
    )
    assert bad_status.status_code == 400
    assert (
        client.post(
            "/console/campaigns/tea/platforms/myspace", data={"csrf_token": token(client)}
        ).status_code
        == 404
    )
    assert doc["slug"] == "tea"


# -- risk --------------------------------------------------------------------------------------------


def test_review_queue_filters_and_sorts(app: Flask, services: Services, staff: None) -> None:
    doc, flag = flagged_campaign(services)
    low, _ = services.flags.raise_flag(
        doc["id"], "tea", FlagCandidate("click", "c1", 0.3, ("odd",)), 2.0
    )
    client = as_role(app, "risk")
    page = client.get("/console/flags", headers=EN)
    assert page.text.index(flag.id) < page.text.index(low.id)
    assert "2 flags" in page.text
    high_only = client.get("/console/flags?min_score=0.5", headers=EN)
    assert flag.id in high_only.text and low.id not in high_only.text
    clicks = client.get("/console/flags?kind=click&campaign=tea", headers=EN)
    assert low.id in clicks.text and flag.id not in clicks.text
    by_amount = client.get("/console/flags?sort=amount", headers=EN)
    assert by_amount.text.index(flag.id) < by_amount.text.index(low.id)
    for bad in ("kind=robot", "status=maybe", "min_score=2", "sort=x", "page=0", "colour=red"):
        assert client.get(f"/console/flags?{bad}").status_code == 400, bad
    too_far = client.get("/console/flags?page=100001", headers=EN)
    assert too_far.status_code == 400
    assert "The page is a whole number from 1 to 100000." in too_far.text
    # A bad value is said above the queue, which keeps the other filters: the reviewer corrects
    # it there instead of going back from an error page.
    comma = client.get("/console/flags?kind=click&min_score=0,5", headers=EN)
    assert comma.status_code == 400
    assert "The minimum score is a number from 0 to 1." in comma.text
    assert low.id in comma.text and flag.id not in comma.text  # still the click flags
    assert 'name="min_score" value=""' in comma.text  # the bad value is not kept in the pager
    assert client.get("/console/flags?campaign=nope").status_code == 404


def test_a_legit_decision_says_what_other_open_flags_still_hold(
    app: Flask, services: Services, staff: None
) -> None:
    doc, flag = flagged_campaign(services)
    # p1 is also the subject of a participant flag of its own, still open.
    services.flags.raise_flag(
        doc["id"], "tea", FlagCandidate("participant", "p1", 0.9, ("alt account",)), 2.0
    )
    client = as_role(app, "risk")
    decided = client.post(
        f"/console/flags/{flag.id}/decision",
        data={"decision": "legit", "csrf_token": token(client)},
        headers=EN,
    )
    page = client.get(decided.location, headers=EN)
    assert "rewards 1 held → credited. 1 stay held: other open flags are about them." in page.text
    assert services.rewards.get(doc["id"], "p1")["status"] == "held"  # type: ignore[index]
    assert services.rewards.get(doc["id"], "p2")["status"] == "credited"  # type: ignore[index]


def test_a_decision_releases_or_claws_back_and_says_so(
    app: Flask, services: Services, staff: None
) -> None:
    doc, flag = flagged_campaign(services)
    client = as_role(app, "risk")
    page = client.get(f"/console/flags/{flag.id}", headers=EN)
    assert "8 of 8 clicks suspicious" in page.text and page.text.count("status-held") == 2
    assert "farmer" in page.text  # the sharer's subtree
    # What the click path now does with the sharer's links (gateway.referrer_risk).
    now = page.text[page.text.index('id="click-path"') :]
    assert now.startswith('id="click-path"><span class="status status-open">open</span>')
    assert "most clicks on their links looked suspicious (0.90): " in now[:400]
    # In Chinese with Chinese punctuation: the state, why, its score and what it does.
    zh = client.get(f"/console/flags/{flag.id}", headers={"Accept-Language": "zh-CN"}).text
    zh_now = zh[zh.index('id="click-path"') :][:400]
    assert "其链接上的大部分点击可疑（0.90）：仅作为原因显示" in zh_now, zh_now
    joins = page.text[page.text.index('id="joins"') :]
    assert joins.index("p1") < joins.index("p2") and "203.0.113.0/24" in joins
    empty = client.post(f"/console/flags/{flag.id}/decision", data={"csrf_token": token(client)})
    assert empty.status_code == 400 and services.flags.get(flag.id).status == "open"  # type: ignore[union-attr]
    decided = client.post(
        f"/console/flags/{flag.id}/decision",
        data={"decision": "legit", "note": "a real fan", "csrf_token": token(client)},
        headers=EN,
    )
    assert decided.status_code == 302
    page = client.get(decided.location, headers=EN)
    assert "rewards 2 held → credited" in page.text
    assert "nothing fed back: clicks are scored on their own" in page.text
    after = services.flags.get(flag.id)
    assert after and after.status == "legit" and after.decided_by == "user:risk@staff.example.com"
    assert services.rewards.get(doc["id"], "p1")["status"] == "credited"  # type: ignore[index]
    # Decisions are labels for training, like the API's.
    assert services.flags.decisions(doc["id"])[-1]["note"] == "a real fan"
    assert services.audit.recent()[0].action == "flag.decide"
    # A decision can be changed from the page, and the money follows it both ways.
    assert 'id="decide-fraud"' in page.text and 'id="decide-legit"' not in page.text
    changed = client.post(
        f"/console/flags/{flag.id}/decision",
        data={"decision": "fraud", "note": "a farm after all", "csrf_token": token(client)},
        headers=EN,
    )
    page = client.get(changed.location, headers=EN)
    assert "rewards 2 credited → clawed back" in page.text
    assert "Legitimate pays back what this decision denied or clawed back" in page.text
    assert 'id="decide-legit"' in page.text and 'id="decide-fraud"' not in page.text
    back = client.post(
        f"/console/flags/{flag.id}/decision",
        data={
            "decision": "legit",
            "note": "a fan: checked the orders",
            "csrf_token": token(client),
        },
        headers=EN,
    )
    assert "rewards 2 clawed back → credited" in client.get(back.location, headers=EN).text
    assert services.rewards.get(doc["id"], "p2")["status"] == "credited"  # type: ignore[index]


def test_bulk_decisions(app: Flask, services: Services, staff: None) -> None:
    doc, flag = flagged_campaign(services)
    services.conversions.convert(record_click(services, doc, "ring"), "p3")
    other, _ = services.flags.raise_flag(
        doc["id"], "tea", FlagCandidate("referrer", "ring", 0.8, ("ring",)), 2.0
    )
    client = as_role(app, "risk")
    none = client.post(
        "/console/flags/decisions",
        data={
            "decision": "fraud",
            "note": "checked the orders <b>by hand</b>",
            "back": "/console/flags?status=open",
            "csrf_token": token(client),
        },
        headers=EN,
    )
    # Back to the queue as it was: the reviewer is told what to do and keeps their note.
    assert none.status_code == 302 and none.location == "/console/flags?status=open"
    again = client.get(none.location, headers=EN).text
    assert '<p class="error" role="alert">Select 1 to 50 flags.</p>' in again
    assert 'value="checked the orders &lt;b&gt;by hand&lt;/b&gt;"' in again
    assert (
        'id="bulk-note" name="note" maxlength="2000" value=""'
        in client.get(none.location, headers=EN).text
    )  # shown once
    assert services.flags.get(flag.id).status == "open"  # type: ignore[union-attr]
    unknown = client.post(
        "/console/flags/decisions",
        data={"flag": [flag.id, "1-ffffffffff"], "decision": "fraud", "csrf_token": token(client)},
    )
    assert unknown.status_code == 404 and services.flags.get(flag.id).status == "open"  # type: ignore[union-attr]
    done = client.post(
        "/console/flags/decisions",
        data={
            "flag": [flag.id, other.id],
            "decision": "fraud",
            "note": "farm",
            "back": "/console/flags?status=open",
            "csrf_token": token(client),
        },
        headers=EN,
    )
    assert done.status_code == 302 and done.location == "/console/flags?status=open"
    assert {services.flags.get(i).status for i in (flag.id, other.id)} == {"fraud"}  # type: ignore[union-attr]
    assert services.rewards.get(doc["id"], "p3")["status"] == "denied"  # type: ignore[index]
    page = client.get(done.location, headers=EN)
    assert page.text.count("held → denied") == 2


def test_a_decision_is_reported_in_the_readers_language(
    app: Flask, services: Services, staff: None
) -> None:
    """The result named the decision as stored ("fraud") inside a Chinese sentence."""
    _, flag = flagged_campaign(services)
    client = as_role(app, "risk")
    zh = {"Accept-Language": "zh-CN"}
    decided = client.post(
        f"/console/flags/{flag.id}/decision",
        data={"decision": "fraud", "csrf_token": token(client)},
        headers=zh,
    )
    page = client.get(decided.location, headers=zh).text
    results = page[page.index('id="results"') :][:200]
    assert f"标记 {flag.id} 已判定为作弊：奖励 2 冻结 → 拒发。" in results


def test_the_flag_page_says_what_is_at_stake_and_what_each_decision_does(
    app: Flask, services: Services, staff: None
) -> None:
    """The queue showed an amount at stake, the flag page neither it nor what Fraud or
    Legitimate would move; the buttons ask before money moves (static/console.js)."""
    _, flag = flagged_campaign(services)
    client = as_role(app, "risk")
    page = client.get(f"/console/flags/{flag.id}", headers=EN).text
    assert '<dd id="at-stake">2 (2 held and 0 credited rewards)</dd>' in page
    fraud = "Fraud denies the 2 held rewards and claws back the 0 credited ones."
    legit = "Legitimate credits the 2 held rewards, except those another open flag is about"
    assert fraud in page and legit in page
    assert f'value="fraud" id="decide-fraud" data-confirm="{fraud} Decide it?"' in page
    assert f'value="legit" id="decide-legit" data-confirm="{legit}' in page
    client.post(
        f"/console/flags/{flag.id}/decision",
        data={"decision": "legit", "csrf_token": token(client)},
    )
    page = client.get(f"/console/flags/{flag.id}", headers=EN).text
    assert '<dd id="at-stake">2 (0 held and 2 credited rewards)</dd>' in page
    assert "Fraud denies the 0 held rewards and claws back the 2 credited ones." in page
    zh = client.get(f"/console/flags/{flag.id}", headers={"Accept-Language": "zh-CN"}).text
    assert '<dd id="at-stake">2（冻结 0 笔、已发放 2 笔奖励）</dd>' in zh
    assert "判定为作弊将拒发 0 笔冻结的奖励，并追回 2 笔已发放的奖励。确定判定吗？" in zh


def test_a_decision_taken_while_the_page_was_open_is_not_replaced(
    app: Flask, services: Services, staff: None
) -> None:
    """Two reviewers on one flag (or one form sent twice): the second decision, taken on a page
    showing the flag open, used to replace the first silently and claw back what it paid."""
    doc, flag = flagged_campaign(services)
    first, second = as_role(app, "risk"), as_role(app, "admin")
    page = second.get(f"/console/flags/{flag.id}", headers=EN).text
    assert '<input type="hidden" name="seen" value="open">' in page
    first.post(
        f"/console/flags/{flag.id}/decision",
        data={"decision": "legit", "seen": "open", "csrf_token": token(first)},
    )
    late = second.post(
        f"/console/flags/{flag.id}/decision",
        data={
            "decision": "fraud",
            "seen": "open",
            "note": "farm, see the orders",
            "csrf_token": token(second),
        },
        headers=EN,
    )
    assert late.status_code == 302
    page = second.get(late.location, headers=EN).text
    assert (
        f"Flag {flag.id} was decided legitimate by user:risk@staff.example.com while this page was "
        "open: nothing was changed."
    ) in page
    assert ">farm, see the orders</textarea>" in page  # the note waits for a second look
    assert services.flags.get(flag.id).status == "legit"  # type: ignore[union-attr]
    assert services.rewards.get(doc["id"], "p1")["status"] == "credited"  # type: ignore[index]
    assert [e.action for e in services.audit.recent()].count("flag.decide") == 1
    # The queue offers open flags only: one decided since keeps its decision there too.
    bulk = second.post(
        "/console/flags/decisions",
        data={"flag": [flag.id], "decision": "fraud", "csrf_token": token(second)},
        headers=EN,
    )
    assert "while this page was open: nothing was changed." in second.get(bulk.location).text
    assert services.flags.get(flag.id).status == "legit"  # type: ignore[union-attr]
    # Deciding again on purpose, from a page showing the decision, still works.
    again = second.post(
        f"/console/flags/{flag.id}/decision",
        data={"decision": "fraud", "seen": "legit", "csrf_token": token(second)},
        headers=EN,
    )
    assert "rewards 2 credited → clawed back" in second.get(again.location, headers=EN).text
    # A tampered "seen" is bad input (400), not a decision taken meanwhile; nothing changes.
    tampered = second.post(
        f"/console/flags/{flag.id}/decision",
        data={"decision": "legit", "seen": "maybe", "csrf_token": token(second)},
        headers=EN,
    )
    assert tampered.status_code == 400 and "meanwhile" not in tampered.text
    assert services.flags.get(flag.id).status == "fraud"  # type: ignore[union-attr]
    # A flag named twice in one (tampered) form is decided once.
    _, other = flagged_campaign(services, slug="coffee")
    second.post(
        "/console/flags/decisions",
        data={"flag": [other.id, other.id], "decision": "fraud", "csrf_token": token(second)},
    )
    assert [e.action for e in services.audit.recent()].count("flag.decide") == 3


def test_flags_and_the_tree_link_to_each_other(app: Flask, services: Services, staff: None) -> None:
    """From a flag to the people it is about in the referral tree, and from a person's flag
    states in the tree to the flags (for those who may open them)."""
    doc, flag = flagged_campaign(services)
    cluster, _ = services.flags.raise_flag(
        doc["id"],
        "tea",
        FlagCandidate("cluster", "ring:p1,p2", 0.9, ("ring",), members=("p1", "p2")),
        2.0,
    )
    client = as_role(app, "risk")
    page = client.get(f"/console/flags/{flag.id}", headers=EN).text
    tree = "/console/campaigns/tea/tree?node="
    people = "/console/campaigns/tea/people/"
    # The subject: their page, and their place in the tree.
    assert f'<dd><a href="{people}farmer" id="subject">farmer</a> · <a href="{tree}farmer">' in page
    rewards = page[page.index('id="rewards"') :]
    assert f'<a href="{people}p1">p1</a></td><td><a href="{people}farmer">farmer</a>' in rewards
    members = client.get(f"/console/flags/{cluster.id}", headers=EN).text
    assert f'<p id="members"><a href="{people}p1">p1</a>' in members
    # Each link leads to the person's page, which lists this flag.
    for name in ("farmer", "p1"):
        person = client.get(f"{people}{name}", headers=EN)
        assert person.status_code == 200 and f'<h1 id="name">{name}</h1>' in person.text
    assert f"/console/flags/{flag.id}" in client.get(f"{people}farmer").text
    assert f"/console/flags/{cluster.id}" in client.get(f"{people}p1").text
    node = client.get(f"{tree}farmer", headers=EN).text
    assert f'href="/console/flags/{flag.id}">sharer open</a>' in node
    # Every node in the tree links to its person's page beside its place in the tree.
    for name in ("farmer", "p1", "p2"):
        assert f'<a href="{tree}{name}">{name}</a>' in node, name
        assert f'<a class="meta" href="{people}{name}"' in node, name
    marketing = as_role(app, "marketing").get(f"{tree}farmer", headers=EN).text
    assert "sharer open</span>" in marketing and f"/console/flags/{flag.id}" not in marketing
    assert f'<a class="meta" href="{people}p1"' in marketing


def a_sharers_story(services: Services) -> tuple[dict[str, Any], dict[str, str]]:
    """``farmer``, invited by ``root``, invited p1-p5, whose rewards end credited (p1, p5),
    held (p2), denied (p3) and clawed back (p4); farmer's own reward is held by the open ring
    cluster they are a member of, their participant flag and the flag on the click they joined
    through. Returns the campaign and the ids of farmer's flags by kind."""
    campaign = services.campaigns.create(
        {
            "slug": "tea",
            "name": "Tea",
            "destination_url": "https://shop.example.com/",
            "reward": {"amount": 2, "budget_total": 100},
        },
        "test",
    )
    doc = {"id": campaign.id, "slug": "tea"}
    joined_on = record_click(services, doc, "root")
    services.conversions.convert(joined_on, "farmer")
    for user in ("p2", "p3", "p4"):
        services.conversions.convert(record_click(services, doc, "farmer"), user)

    def raise_(kind: str, subject: str, reason: str, **more: Any) -> str:
        flag, _ = services.flags.raise_flag(
            campaign.id, "tea", FlagCandidate(kind, subject, 0.8, (reason,), **more), 2.0
        )
        return flag.id

    p4 = raise_("participant", "p4", "the conversion arrived before the click")
    services.flags.decide(p4, "legit", "", "test")
    services.flags.decide(p4, "fraud", "", "test")  # credited again, then clawed back
    services.flags.decide(raise_("participant", "p3", "review"), "fraud", "", "test")
    raise_("participant", "p2", "review")  # held while open
    ids = {
        "cluster": raise_(
            "cluster",
            "ring:farmer,mole",
            "found in a ring of sharers converting each other's links",
            members=("farmer", "mole"),
            source="tree:ring",
        ),
        "participant": raise_("participant", "farmer", "review"),
        "click": raise_("click", joined_on, "opened from a datacenter network"),
    }
    # Later conversions under a cluster's member are not held for the cluster alone.
    for user in ("p1", "p5"):
        services.conversions.convert(record_click(services, doc, "farmer"), user)
    return doc, ids


def test_a_sharers_page_tells_their_whole_story(
    app: Flask, services: Services, staff: None
) -> None:
    """One page per person of a campaign: their place in the tree, every flag about them (their
    own, their join's click, the clusters they are a member of), their reward for joining, their
    referrals' rewards in every state with totals, their links and what the click path does
    with them (the QA pass: the tree node showed only their own flag states)."""
    _, ids = a_sharers_story(services)
    client = as_role(app, "risk")
    response = client.get("/console/campaigns/tea/people/farmer", headers=EN)
    assert response.status_code == 200
    page = response.text
    people = "/console/campaigns/tea/people/"
    assert '<h1 id="name">farmer</h1>' in page
    assert f'<dd id="parent"><a href="{people}root">root</a></dd>' in page
    assert '<dd id="children">5</dd>' in page and '<dd id="subtree-size">5</dd>' in page
    assert 'href="/console/campaigns/tea/tree?node=farmer" id="in-tree"' in page
    assert '<dd id="links"><span class="status status-ok">active</span></dd>' in page
    flags = page[page.index('id="flags"') : page.index("</table>", page.index('id="flags"'))]
    assert "<h2>Flags about them (3)</h2>" in page
    for kind, flag_id in ids.items():
        assert f'<a href="/console/flags/{flag_id}"><code>{flag_id}</code></a>' in flags, kind
    # Their own flags first, then the click they joined through, then their clusters.
    assert flags.index(ids["participant"]) < flags.index(ids["click"]) < flags.index(ids["cluster"])
    assert "a member of this cluster" in flags and "ring:farmer,mole (2)" in flags
    assert "the click they joined through" in flags and "opened from a datacenter network" in flags
    assert (
        '<td class="text">found in a ring of sharers converting each other&#39;s links</td>'
        in flags
    )
    assert 'id="clusters-unindexed"' not in page
    # What the click path does with their links: the open ring's entry.
    click_path = page[page.index('id="click-path"') :]
    assert click_path.startswith('id="click-path"><span class="status status-open">open</span>')
    own = page[page.index('id="own-reward"') : page.index('id="totals"')]
    assert f'<a href="{people}root">root</a>' in own and "status-held" in own
    # The reason in words, its code at hand for the risk team (API and exports use it).
    assert '<td title="flagged">flagged</td>' in own
    totals = page[page.index('id="totals"') : page.index('id="referred"')]
    cells = re.findall(
        r'status-(\w+)">[^<]+</span></td><td class="num">(\d+)</td>'
        r'<td class="num">(\d+)</td>',
        totals,
    )
    assert cells == [
        ("credited", "2", "4"),
        ("held", "1", "2"),
        ("denied", "1", "2"),
        ("clawed_back", "1", "2"),
    ], totals
    assert "<h2>Rewards for the people they invited (5)</h2>" in page
    referred = page[page.index('id="referred"') :]
    for user, status in (
        ("p1", "credited"),
        ("p2", "held"),
        ("p3", "denied"),
        ("p4", "clawed_back"),
    ):
        assert re.search(
            rf'<a href="{people}{user}">{user}</a></td><td class="num">2</td>'
            rf'<td><span class="status status-{status}">',
            referred,
        ), user
    assert 'id="partial"' not in page  # every reward listed

    zh = client.get("/console/campaigns/tea/people/farmer", headers={"Accept-Language": "zh-CN"})
    text = zh.text
    assert "<h2>与其相关的标记（3）</h2>" in text
    assert "<h2>其邀请的人的奖励（5）</h2>" in text
    assert "<p>活动：<a" in text and "Flags about them" not in text
    assert "ring:farmer,mole（2）" in text and "属于互相转化链接的分享者团伙" in text
    assert "其加入时的点击" in text and "团伙成员" in text
    assert '<span class="status status-clawed_back">已追回</span>' in text
    assert '<span class="status status-open">待审核</span>' in text
    # A person who only shared: no join, their links revoked.
    services.links.revoke(services.campaigns.require("tea"), "farmer")
    page = client.get("/console/campaigns/tea/people/root", headers=EN).text
    assert '<dd id="parent">nobody: a first sharer</dd>' in page
    assert "<h2>Flags about them (0)</h2>" in page and "No flag is about them." in page
    assert '<tr><td colspan="6">None.</td></tr>' in page  # no reward for joining
    revoked = client.get("/console/campaigns/tea/people/farmer", headers=EN).text
    assert '<dd id="links"><span class="status status-revoked">revoked</span>' in revoked
    assert '<dd id="revocations">1</dd>' in revoked


def test_a_sharers_page_for_each_role_and_unknown_names(
    app: Flask, services: Services, staff: None
) -> None:
    """Risk and admins see everything; marketing (who may open the tree) sees the person's place,
    rewards and links, and their flags' kinds and states without the flags' evidence or links,
    as on the tree page; unknown people and campaigns get the console's 404 page."""
    _, ids = a_sharers_story(services)
    path = "/console/campaigns/tea/people/farmer"
    for role in ("risk", "admin"):
        page = as_role(app, role).get(path, headers=EN).text
        assert f"/console/flags/{ids['cluster']}" in page and 'id="click-path"' in page, role
    marketing = as_role(app, "marketing").get(path, headers=EN)
    assert marketing.status_code == 200
    page = marketing.text
    assert "<h2>Flags about them (3)</h2>" in page and "a member of this cluster" in page
    assert "/console/flags/" not in page and 'id="click-path"' not in page
    assert "ring:farmer,mole" not in page and "datacenter" not in page  # no evidence
    assert 'id="referred"' in page and "status-clawed_back" in page
    assert as_role(app, "anonymous").get(path).status_code == 302
    client = as_role(app, "risk")
    for missing in (
        "/console/campaigns/tea/people/nobody",
        "/console/campaigns/tea/people/" + "x" * 300,
    ):
        response = client.get(missing, headers=EN)
        assert response.status_code == 404, missing
        assert "<h1>Not found</h1>" in response.text and "There is nothing here." in response.text
    # An unknown campaign: the console's page for it, as on the tree page.
    response = client.get("/console/campaigns/coffee/people/farmer", headers=EN)
    assert response.status_code == 404 and re.search(r'role="alert">[^<]*coffee', response.text)
    # A cluster member who never joined and has no links is still someone a flag is about.
    assert client.get("/console/campaigns/tea/people/mole").status_code == 200


def test_a_campaign_not_indexed_by_member_says_its_clusters_are_missing(
    app: Flask, services: Services, staff: None
) -> None:
    """Clusters are found through the cluster index only (never by reading every flag): a
    campaign from before it says so until `refgate flags reindex` runs."""
    doc, _ = a_sharers_story(services)
    services.store.main.hdel(keys.campaign_keys(doc["id"]).counters, keys.STAKE_INDEXED)
    page = as_role(app, "risk").get("/console/campaigns/tea/people/farmer", headers=EN).text
    assert 'id="clusters-unindexed"' in page and "refgate flags reindex" in page


def test_the_way_back_to_the_queue_keeps_its_filters(
    app: Flask, services: Services, staff: None
) -> None:
    """Working through a filtered queue: a flag opened from it leads back to it as filtered,
    after a decision too, never to another site."""
    _, flag = flagged_campaign(services)
    client = as_role(app, "risk")
    queue = client.get("/console/flags?kind=referrer&sort=amount", headers=EN).text
    back = "/console/flags?kind=referrer&amp;sort=amount"
    link = f'href="/console/flags/{flag.id}?back=/console/flags?kind%3Dreferrer%26sort%3Damount"'
    assert link in queue
    page = client.get(
        f"/console/flags/{flag.id}?back=/console/flags?kind%3Dreferrer%26sort%3Damount",
        headers=EN,
    ).text
    assert f'<a href="{back}" id="back">Back to the review queue</a>' in page
    assert f'<input type="hidden" name="back" value="{back}">' in page
    decided = client.post(
        f"/console/flags/{flag.id}/decision",
        data={
            "decision": "legit",
            "back": "/console/flags?kind=referrer&sort=amount",
            "csrf_token": token(client),
        },
    )
    after = client.get(decided.location, headers=EN).text
    assert f'<a href="{back}" id="back">' in after
    for elsewhere in ("https://evil.example/", "//evil.example/console/flags", "/console/flagsx"):
        page = client.get(f"/console/flags/{flag.id}", query_string={"back": elsewhere}).text
        assert '<a href="/console/flags" id="back">' in page, elsewhere


def test_tree_view_pages_children(app: Flask, services: Services, staff: None) -> None:
    doc, _ = flagged_campaign(services)
    for n in range(60):
        services.conversions.convert(record_click(services, doc, "p1"), f"c{n:02d}")
    client = as_role(app, "marketing")
    top = client.get("/console/campaigns/tea/tree", headers=EN)
    assert top.status_code == 200 and "p1</a>" in top.text  # the top sharer (credited)
    node = client.get("/console/campaigns/tea/tree?node=p1", headers=EN)
    assert "children 1-50 of 60" in node.text and "c49" in node.text and "c50" not in node.text
    assert "farmer</a>" in node.text  # the ancestors
    following = client.get("/console/campaigns/tea/tree?node=p1&cursor=50", headers=EN)
    assert "children 51-60 of 60" in following.text and "c59" in following.text
    farmer = client.get("/console/campaigns/tea/tree?node=farmer", headers=EN)
    assert "<details>" in farmer.text and "c04" in farmer.text and "c05" not in farmer.text
    assert client.get("/console/campaigns/tea/tree?node=nobody").status_code == 404
    assert client.get("/console/campaigns/tea/tree?node=p1&cursor=-1").status_code == 400


# -- language -------------------------------------------------------------------------------------


def test_language_follows_the_setting_then_accept_language(
    app: Flask, services: Services, staff: None
) -> None:
    client = as_role(app, "marketing")
    assert "新建活动" in client.get("/console/campaigns", headers={"Accept-Language": "zh-CN"}).text
    assert "New campaign" in client.get("/console/campaigns", headers=EN).text
    assert "新建活動" in client.get("/console/campaigns", headers={"Accept-Language": "zh-TW"}).text
    client.post("/console/settings", data={"locale": "zh_Hans_CN", "csrf_token": token(client)})
    assert "新建活动" in client.get("/console/campaigns", headers=EN).text
    settings = client.get("/console/settings", headers=EN).text
    assert "繁體中文" in settings and "简体中文" in settings
    client.post("/console/settings", data={"locale": "zh_Hant_TW", "csrf_token": token(client)})
    page = client.get("/console/campaigns", headers=EN).text
    assert "新建活動" in page and '<html lang="zh-Hant"' in page
    bad = client.post("/console/settings", data={"locale": "xx", "csrf_token": token(client)})
    assert bad.status_code == 400
    assert services.users.require(email("marketing")).locale == "zh_Hant_TW"


def test_a_device_is_shown_by_both_its_parts(app: Flask) -> None:
    """Two phones behind one address share the address hash: the flag page showed 16 letters of
    it and listed one "device" four times with different counts (the second QA pass)."""
    device = app.jinja_env.get_template("console/_device.html").module.device  # type: ignore[attr-defined]
    one, other = "bfba72995c377d166a90|1f6381760aca", "bfba72995c377d166a90|6a1d0c2b44e1"
    assert str(device(one)) == f'<code title="{one}">bfba7299·1f638176</code>'
    assert str(device(one)) != str(device(other))
    assert str(device("")) == '<code title=""></code>'


def test_the_open_queue_pages_from_the_index_as_find_would(
    app: Flask, services: Services, staff: None
) -> None:
    doc, first = flagged_campaign(services)
    other = services.campaigns.create(
        {"slug": "b", "name": "B", "destination_url": "https://shop.example.com/"}, "t"
    )
    for n in range(70):
        campaign_id, slug = (doc["id"], "tea") if n % 2 else (other.id, "b")
        services.flags.raise_flag(
            campaign_id, slug, FlagCandidate("click", f"c{n}", (n % 9) / 10, ("x",)), 2.0
        )
    services.flags.decide(first.id, "fraud", "", "t")  # decided: not in the open queue
    ids = [doc["id"], other.id]
    expected, total = services.flags.find(ids, status="open", limit=1000)
    assert total == 70
    for offset in (0, 50):
        page, counted = services.flags.open_page(ids, limit=50, offset=offset)
        assert counted == 70 and page == expected[offset : offset + 50]
    high, counted = services.flags.open_page(ids, min_score=0.5, limit=50, offset=0)
    assert counted == len(high) == sum(1 for f in expected if f.score >= 0.5)
    client = as_role(app, "risk")
    second = client.get("/console/flags?page=2", headers=EN)
    assert "70 flags" in second.text and "2 / 2" in second.text
    assert second.text.count('class="pick"') == 20


def test_chinese_pages_punctuate_in_chinese_and_english_ones_as_before(
    app: Flask, services: Services, staff: None
) -> None:
    """A label and its value, a count in brackets, a list, a date and who decided: the Chinese
    console says them with Chinese punctuation (：（）、，), the English one exactly as before
    (the third QA pass found ASCII ': ', ' (' and ', ' between Chinese words)."""
    doc, flag = flagged_campaign(services)
    cluster, _ = services.flags.raise_flag(
        doc["id"],
        "tea",
        FlagCandidate("cluster", "ring:p1,p2", 0.9, ("ring",), members=("p1", "p2")),
        2.0,
    )
    joined, _ = services.flags.raise_flag(
        doc["id"],
        "tea",
        FlagCandidate("participant", "p2", 0.9, ("alt",), evidence={"parent": "farmer"}),
        2.0,
    )
    risk = as_role(app, "risk")
    # What a decision did, the decision in words, the rewards the open cluster flag still holds
    # in a second sentence: no space between Chinese sentences.
    said = risk.post(
        f"/console/flags/{flag.id}/decision",
        data={"decision": "legit", "csrf_token": token(risk)},
        headers={"Accept-Language": "zh-CN"},
    )
    decided = risk.get(said.location).text
    assert "已判定为正常：奖励没有变化。仍有 2 笔奖励冻结：" in decided, decided
    risk.post(
        f"/console/flags/{cluster.id}/decision",
        data={"decision": "fraud", "note": "a ring", "csrf_token": token(risk)},
    )
    zh, en = {"Accept-Language": "zh-CN"}, EN
    page = risk.get(f"/console/flags/{cluster.id}", headers=zh).text
    assert "<h2>成员（2）</h2>" in page
    assert "<p>网段：203.0.113.0/24 ×2</p>" in page
    assert re.search(r"<dd>[^<]+ UTC，更新于 [^<]+ UTC</dd>", page), page
    assert re.search(r"<dd>user:risk@staff.example.com，[^<]+ UTC：a ring</dd>", page), page
    page = risk.get(f"/console/flags/{cluster.id}", headers=en).text
    assert "<h2>Members (2)</h2>" in page
    assert "<p>Network prefixes: 203.0.113.0/24 ×2</p>" in page
    assert re.search(r"<dd>[^<]+ UTC, updated [^<]+ UTC</dd>", page), page
    assert re.search(r"<dd>user:risk@staff.example.com, [^<]+ UTC: a ring</dd>", page), page
    # The inviter as a name, not as JSON ("farmer"); numbers as they were.
    for headers in (zh, en):
        page = risk.get(f"/console/flags/{joined.id}", headers=headers).text
        assert "<code>farmer</code>" in page and "&#34;farmer" not in page, page
    marketing = as_role(app, "marketing")
    alert = BlockAlert("tea", "wechat", time.time(), 0.4, 0.05, 400, 3)
    services.store.main.hset(keys.campaign_keys(doc["id"]).alerts, "wechat", alert.to_json())
    assert "疑似屏蔽（1）" in marketing.get("/console/campaigns", headers=zh).text
    assert "possible block (1)" in marketing.get("/console/campaigns", headers=en).text
    campaign = marketing.get("/console/campaigns/tea", headers=zh).text
    legend = re.findall(r'<text x="54" y="\d+" font-size="12">([^<]+)</text>', campaign)
    assert legend and all(re.fullmatch(r"\S+（\d+）", text) for text in legend), legend
    campaign = marketing.get("/console/campaigns/tea", headers=en).text
    legend = re.findall(r'<text x="54" y="\d+" font-size="12">([^<]+)</text>', campaign)
    assert "clicks (2)" in legend, legend
    edit = marketing.get("/console/campaigns/tea/edit", headers=zh).text
    assert "<p>标识：<code>tea</code></p>" in edit
    edit = marketing.get("/console/campaigns/tea/edit", headers=en).text
    assert "<p>Slug: <code>tea</code></p>" in edit
    minted = marketing.post(
        "/console/campaigns/tea/links",
        data={"referrer": "alice", "csrf_token": token(marketing)},
        headers=zh,
    ).text
    assert "<h1>生成分享链接：Tea</h1>" in minted and "<p>邀请码：<code" in minted
    assert "<p>分享文案：" in minted
    minted = marketing.post(
        "/console/campaigns/tea/links",
        data={"referrer": "alice", "csrf_token": token(marketing)},
        headers=en,
    ).text
    assert "<h1>Mint a share link: Tea</h1>" in minted and "<p>Invite code: <code" in minted
    tree = marketing.get("/console/campaigns/tea/tree", headers=zh).text
    assert "<title>邀请关系树：Tea · refgate</title>" in tree
    tree = marketing.get("/console/campaigns/tea/tree", headers=en).text
    assert "<title>Referral tree: Tea · refgate</title>" in tree
    # A copy check's warning: the term and the rule it breaks, after the check's name.
    services.campaigns.update("tea", {"share_text": "转发得红包 {url}"}, "test")
    edit = marketing.get("/console/campaigns/tea/edit", headers=zh).text
    assert re.search(r'<p class="field-warning">文案检查：[^<: ]+：[^<]+</p>', edit), edit
    edit = marketing.get("/console/campaigns/tea/edit", headers=en).text
    assert re.search(r'<p class="field-warning">Copy check: [^<: ]+: [^<]+</p>', edit), edit
    # An account's problem, named by its address.
    admin = as_role(app, "admin")
    for headers, colon in ((zh, "："), (en, ": ")):
        refused = admin.post(
            f"/console/admin/users/{email('risk')}",
            data={"action": "reset", "password": "short", "csrf_token": token(admin)},
            headers=headers,
        )
        assert refused.status_code == 400
        assert f'role="alert">{email("risk")}{colon}' in refused.text, refused.text


def test_roles_sources_and_times_read_in_words(app: Flask, services: Services, staff: None) -> None:
    """Roles (the header, users, API keys), a flag's sources (which finder raised it) and an
    evidence time read in the reader's words; forms still send the role's code; a decision
    without a note ends after its time (no colon left hanging)."""
    doc, _ = flagged_campaign(services)
    ring, _ = services.flags.raise_flag(
        doc["id"],
        "tea",
        FlagCandidate(
            "cluster",
            "ring:p1,p2",
            0.9,
            ("ring",),
            members=("p1", "p2"),
            evidence={"ts": 1_780_000_000.0},
            source="tree:ring",
        ),
        2.0,
    )
    zh = {"Accept-Language": "zh-CN"}
    risk = as_role(app, "risk")
    risk.post(
        f"/console/flags/{ring.id}/decision",
        data={"decision": "fraud", "csrf_token": token(risk)},
    )
    page = risk.get(f"/console/flags/{ring.id}", headers=zh).text
    assert f"{email('risk')}（风控）" in page  # the header: who is signed in, as what
    assert '<td title="tree:ring">邀请关系树：互刷环</td>' in page
    assert page.count("tree:ring") == 1  # only the title: the code is never the text
    assert "2026-05-28 20:26:40 UTC" in page and "1780000000" not in page  # the evidence time
    assert re.search(r"<dd>user:risk@staff\.example\.com，[^<：]+ UTC</dd>", page), page
    english = risk.get(f"/console/flags/{ring.id}", headers=EN).text
    assert (
        f"{email('risk')} (risk)" in english
        and '<td title="tree:ring">referral tree: ring</td>' in english
    )
    assert re.search(r"<dd>user:risk@staff\.example\.com, [\d-]+ [\d:]+ UTC</dd>", english)

    admin = as_role(app, "admin")
    users = admin.get("/console/admin/users", headers=zh).text
    assert "<td>市场</td>" in users and '<option value="risk" selected>风控</option>' in users
    keys_page = admin.get("/console/admin/apikeys", headers=zh).text
    assert '<option value="conversion" selected>转化上报</option>' in keys_page
    # The form sends the code, whatever the reader's language: the role changes.
    changed = admin.post(
        f"/console/admin/users/{email('risk')}",
        data={"action": "role", "role": "marketing", "csrf_token": token(admin)},
        headers=zh,
    )
    assert changed.status_code == 302
    assert services.users.get(email("risk")).role == "marketing"
