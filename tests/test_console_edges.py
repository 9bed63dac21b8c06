"""The console where staff work around each other: two editors, two accounts in one browser, a
sign-in in the middle of a decision, pages past the end (cases found exploring the console)."""

from __future__ import annotations

import re
import time
from datetime import UTC

import pytest
from flask import Flask
from flask.testing import FlaskClient

from gateway.services import Services
from tests.console_helpers import (
    add_staff,
    as_role,
    csrf_of,
    email,
    flagged_campaign,
    login,
    token,
)
from tests.test_console import campaign_form, field_errors

EN = {"Accept-Language": "en"}


@pytest.fixture
def staff(services: Services) -> None:
    add_staff(services)


def edit_form(client: FlaskClient, slug: str) -> dict[str, str]:
    """The edit form as the browser would send it back unchanged (its hidden fields included)."""
    page = client.get(f"/console/campaigns/{slug}/edit", headers=EN).text
    fields = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page))
    texts = dict(re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>([^<]*)</textarea>', page))
    return {**campaign_form(), **fields, **texts}


def test_an_older_form_does_not_overwrite_a_newer_edit(
    app: Flask, services: Services, staff: None
) -> None:
    ann, bob = as_role(app, "marketing"), as_role(app, "admin")
    created = ann.post("/console/campaigns/new", data={**campaign_form(), "csrf_token": token(ann)})
    assert created.status_code == 302
    first, second = edit_form(ann, "spring-tea"), edit_form(bob, "spring-tea")
    assert first["version"] == second["version"] == "1"
    saved = ann.post("/console/campaigns/spring-tea/edit", data={**first, "name": "Ann's name"})
    assert saved.status_code == 302
    late = bob.post(
        "/console/campaigns/spring-tea/edit",
        data={**second, "share_text": "Bob's text {url}"},
        headers=EN,
    )
    assert late.status_code == 409
    assert "changed by someone else since this form was opened" in late.text
    assert 'value="Bob&#39;s text' in late.text or "Bob&#39;s text {url}" in late.text  # kept
    campaign = services.campaigns.require("spring-tea")
    assert (campaign.name, campaign.share_text, campaign.version) == ("Ann's name", None, 2)
    # Reloaded, the form carries the new version and saves.
    again = edit_form(bob, "spring-tea")
    assert again["version"] == "2"
    assert bob.post("/console/campaigns/spring-tea/edit", data=again).status_code == 302


def test_a_form_from_another_accounts_session_is_void(
    app: Flask, services: Services, staff: None
) -> None:
    _doc, flag = flagged_campaign(services)
    client = as_role(app, "risk")
    page = client.get(f"/console/flags/{flag.id}", headers=EN)
    left_open = csrf_of(page.text)
    client.post("/console/logout", data={"csrf_token": token(client)})
    assert login(client, "admin").status_code == 302
    sent = client.post(
        f"/console/flags/{flag.id}/decision",
        data={"decision": "fraud", "csrf_token": left_open},
        headers=EN,
    )
    assert sent.status_code == 400 and "The form expired" in sent.text
    assert services.flags.get(flag.id).status == "open"  # type: ignore[union-attr]


def test_a_form_left_open_for_hours_is_still_accepted_within_a_working_day(
    app: Flask, services: Services, staff: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reviewer who opened a flag before lunch decides it after: the form's token is good for
    twelve hours (flask-wtf's default hour lost the note being written), not longer."""
    _doc, flag = flagged_campaign(services)
    client = as_role(app, "risk")
    left_open = csrf_of(client.get(f"/console/flags/{flag.id}", headers=EN).text)
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 3 * 3600)
    sent = client.post(
        f"/console/flags/{flag.id}/decision",
        data={"decision": "fraud", "csrf_token": left_open},
        headers=EN,
    )
    assert sent.status_code == 302
    assert services.flags.get(flag.id).status == "fraud"  # type: ignore[union-attr]
    stale = csrf_of(client.get(f"/console/flags/{flag.id}", headers=EN).text)
    monkeypatch.setattr(time, "time", lambda: now + 16 * 3600)
    refused = client.post(
        f"/console/flags/{flag.id}/decision",
        data={"decision": "legit", "csrf_token": stale},
        headers=EN,
    )
    assert refused.status_code == 400 and "The form expired" in refused.text


def test_signing_in_for_a_forms_address_returns_to_its_page(
    app: Flask, services: Services, staff: None
) -> None:
    """A sign-in asked for a form's address (only POST there) lands on the page the form is on,
    not on a 405: the flag, for its decision."""
    _doc, flag = flagged_campaign(services)
    client = app.test_client()
    url = f"/console/login?next=/console/flags/{flag.id}/decision"
    page = client.get(url)
    signed_in = client.post(
        url,
        data={
            "email": email("risk"),
            "password": "correct horse battery",
            "csrf_token": csrf_of(page.text),
        },
    )
    assert signed_in.status_code == 302
    assert signed_in.location == f"/console/flags/{flag.id}"
    assert client.get(signed_in.location).status_code == 200
    assert services.flags.get(flag.id).status == "open"  # type: ignore[union-attr]


def test_campaign_form_edges(app: Flask, services: Services, staff: None) -> None:
    client = as_role(app, "marketing")

    def post(**fields: str) -> tuple[int, dict[str, str], str]:
        response = client.post(
            "/console/campaigns/new",
            data={**campaign_form(**fields), "csrf_token": token(client)},
            headers=EN,
        )
        return response.status_code, field_errors(response.text), response.text

    # A poster no font can draw: said under the poster, not a form with no field marked.
    status, _errors, page = post(**{"poster.title": "🎉🧋 party"})
    assert status == 400
    assert "no installed font can draw" in page and "🎉" in page
    # A limit without the amount and budget is refused, not dropped.
    status, errors, _ = post(
        **{"reward.amount": "", "reward.budget_total": "", "reward.max_per_referrer": "5"}
    )
    assert status == 400
    assert errors == {"reward.amount": "required", "reward.budget_total": "required"}
    # The range each field takes, from the service: not "0 or more" for a field that takes 1.
    status, errors, _ = post(link_ttl_days="-1", **{"reward.amount": "0"})
    assert errors == {"link_ttl_days": "1 or more", "reward.amount": "1 or more"}
    status, errors, _ = post(link_ttl_days="99999999999999999999")
    assert errors == {"link_ttl_days": "at most 3650"}
    assert services.campaigns.get("spring-tea") is None


def test_admins_keep_their_own_account_and_manage_any_address(
    app: Flask, services: Services, staff: None
) -> None:
    client = as_role(app, "admin")
    me = email("admin")
    demoted = client.post(
        f"/console/admin/users/{me}",
        data={"action": "role", "role": "marketing", "csrf_token": token(client)},
        headers=EN,
    )
    assert demoted.status_code == 400 and "You cannot change your own role." in demoted.text
    assert services.users.get(me).role == "admin"  # type: ignore[union-attr]
    services.users.add("a/b@example.com", "risk", "correct horse battery")
    disabled = client.post(
        "/console/admin/users/a/b@example.com",
        data={"action": "disable", "csrf_token": token(client)},
    )
    assert disabled.status_code == 302
    assert services.users.verify("a/b@example.com", "correct horse battery") is None


def test_queue_pages_keep_their_filters_and_never_run_past_the_end(
    app: Flask, services: Services, staff: None
) -> None:
    flagged_campaign(services)
    client = as_role(app, "risk")
    page = client.get("/console/flags?status=&sort=newest", headers=EN)
    assert page.status_code == 200
    # Every status stays chosen in the pager's links.
    past = client.get("/console/flags?status=&sort=newest&page=7", headers=EN)
    assert past.status_code == 302
    assert "status=&" in past.location and past.location.endswith("page=1")
    assert client.get("/console/flags?page=9", headers=EN).location.endswith("page=1")


def test_console_errors_are_console_pages(app: Flask, services: Services, staff: None) -> None:
    flagged_campaign(services)
    client = as_role(app, "risk")
    for url, status in (
        ("/console/nope", 404),
        ("/console/campaigns/tea/tree?node=farmer&cursor=abc", 400),
        ("/console/campaigns/tea/action", 405),
    ):
        response = client.get(url, headers=EN)
        assert response.status_code == status, url
        assert 'class="top"' in response.text, url  # the console's header, not werkzeug's page
    assert client.get("/console/campaigns/tea/action").headers["Allow"]
    past = client.get("/console/campaigns/tea/tree?node=farmer&cursor=500", headers=EN)
    assert past.status_code == 302 and past.location.endswith("cursor=0")


def test_api_key_form_defaults_to_the_least_role_and_keeps_the_name(
    app: Flask, services: Services, staff: None
) -> None:
    client = as_role(app, "admin")
    page = client.get("/console/admin/apikeys", headers=EN).text
    assert '<option value="conversion" selected>conversion</option>' in page
    refused = client.post(
        "/console/admin/apikeys",
        data={"name": "landing\tapp", "role": "conversion", "csrf_token": token(client)},
        headers=EN,
    )
    assert refused.status_code == 400
    assert "must not contain control characters" in refused.text
    assert 'value="landing\tapp"' in refused.text
    assert services.api_keys.list() == []


def test_a_campaign_page_offers_only_the_actions_its_state_allows(
    app: Flask, services: Services, staff: None
) -> None:
    client = as_role(app, "marketing")
    assert (
        client.post(
            "/console/campaigns/new", data={**campaign_form(), "csrf_token": token(client)}
        ).status_code
        == 302
    )

    def actions() -> list[str]:
        page = client.get("/console/campaigns/spring-tea", headers=EN).text
        return re.findall(r'name="action" value="(\w+)"', page)

    assert actions() == ["pause", "end"]
    services.campaigns.update("spring-tea", {"action": "pause"}, "test")
    assert actions() == ["resume", "end"]
    assert "/console/campaigns/spring-tea/links" in client.get("/console/campaigns/spring-tea").text
    services.campaigns.update("spring-tea", {"action": "end"}, "test")
    assert actions() == []
    # Nor is a link offered that an ended campaign would refuse to mint.
    assert (
        "/console/campaigns/spring-tea/links"
        not in client.get("/console/campaigns/spring-tea").text
    )


def test_ending_a_campaign_is_asked_again_and_each_action_is_sent_once(
    app: Flask, services: Services, staff: None
) -> None:
    client = as_role(app, "marketing")
    form = campaign_form(name="春节奶茶")
    created = client.post("/console/campaigns/new", data={**form, "csrf_token": token(client)})
    assert created.status_code == 302
    page = client.get("/console/campaigns/spring-tea", headers=EN).text
    # Ending cannot be undone (links answer 410, no resume): the button asks first, naming the
    # campaign; pausing is undone with one click and is not asked.
    confirm = re.search(r'value="end" data-confirm="([^"]+)"', page)
    assert confirm and "春节奶茶" in confirm.group(1) and "cannot be resumed" in confirm.group(1)
    assert not re.search(r'value="pause" data-confirm', page)
    forms = re.findall(r"<form [^>]*campaigns/spring-tea/action[^>]*>", page)
    assert len(forms) == 2 and all("data-once" in form for form in forms), forms


def test_a_refused_reset_names_the_account_at_the_top(
    app: Flask, services: Services, staff: None
) -> None:
    client = as_role(app, "admin")
    target = email("risk")
    refused = client.post(
        f"/console/admin/users/{target}",
        data={"action": "reset", "password": "short", "csrf_token": token(client)},
        headers=EN,
    )
    assert refused.status_code == 400
    top = re.search(r'<p class="error" role="alert">([^<]*)</p>', refused.text)
    assert top and top.group(1).startswith(f"{target}: a password has ")
    assert '<p class="field-error">' not in refused.text  # not under the add-a-user form


def test_the_audit_log_finds_a_staff_member_by_their_address(
    app: Flask, services: Services, staff: None
) -> None:
    as_role(app, "risk")  # signs in: an audit entry of theirs
    client = as_role(app, "admin")
    for typed in (f"user:{email('risk')}", f"  {email('risk').upper()} "):
        page = client.get("/console/admin/audit", query_string={"actor": typed}, headers=EN)
        assert page.status_code == 200
        assert page.text.count(f"<td>user:{email('risk')}</td>") == 1, typed


def test_reloading_the_page_that_showed_a_new_key_creates_no_second_key(
    app: Flask, services: Services, staff: None
) -> None:
    client = as_role(app, "admin")
    page = client.get("/console/admin/apikeys", headers=EN).text
    form_id = re.search(r'name="form_id" value="([^"]+)"', page)
    assert form_id
    form = {
        "name": "landing",
        "role": "conversion",
        "csrf_token": token(client),
        "form_id": form_id.group(1),
    }
    created = client.post("/console/admin/apikeys", data=form, headers=EN)
    assert created.status_code == 200 and 'id="new-key"' in created.text
    key_id = services.api_keys.list()[0].id
    # The browser's reload sends the same form again.
    again = client.post("/console/admin/apikeys", data=form, headers=EN)
    assert again.status_code == 409 and 'id="new-key"' not in again.text
    assert f"created key {key_id}" in again.text and "Nothing new was created" in again.text
    assert [key.id for key in services.api_keys.list()] == [key_id]
    # The page it shows offers a fresh form, which creates the next key.
    fresh = re.search(r'name="form_id" value="([^"]+)"', again.text)
    assert fresh and fresh.group(1) != form_id.group(1)
    second = client.post(
        "/console/admin/apikeys",
        data={**form, "name": "crm", "form_id": fresh.group(1)},
        headers=EN,
    )
    assert second.status_code == 200 and len(services.api_keys.list()) == 2
    damaged = client.post(
        "/console/admin/apikeys", data={**form, "form_id": "<script>"}, headers=EN
    )
    assert damaged.status_code == 400 and "the form is damaged" in damaged.text
    assert len(services.api_keys.list()) == 2


def test_the_reward_fields_say_their_unit_and_what_a_cap_counts(
    app: Flask, services: Services, staff: None
) -> None:
    client = as_role(app, "marketing")
    page = client.get("/console/campaigns/new", headers=EN).text

    def help_of(name: str) -> str:
        found = re.search(rf'id="f-{re.escape(name)}"[^>]*>\s*<p class="help">([^<]+)</p>', page)
        assert found, f"no help beside {name}"
        return found.group(1)

    # A cap of 20 "per sharer" read as 20 rewards would be 4 at 5 units each: said beside it.
    assert "not rewards" in help_of("reward.max_per_referrer")
    assert "UTC" in help_of("reward.max_per_day")
    assert "held rewards" in help_of("reward.budget_total")
    assert "Units" in help_of("reward.amount")


def test_a_campaign_page_says_its_dates_destination_and_caps(
    app: Flask, services: Services, staff: None
) -> None:
    client = as_role(app, "marketing")
    form = campaign_form(
        starts_at="2030-02-01T00:00:00+08:00",
        ends_at="2030-02-20T00:00:00Z",
        **{"reward.amount": "5", "reward.max_per_referrer": "20"},
    )
    created = client.post("/console/campaigns/new", data={**form, "csrf_token": token(client)})
    assert created.status_code == 302
    page = client.get("/console/campaigns/spring-tea", headers=EN).text
    found = re.search(r'<dl class="facts" id="setup">(.*?)</dl>', page, re.S)
    assert found, "the campaign's setup is not on its page"
    facts = dict(re.findall(r"<dt>([^<]+)</dt><dd>(.*?)</dd>", found.group(1)))
    # One time zone for every staff member (UTC, named), and the time as it was entered.
    assert facts["Starts at"] == "2030-01-31 16:00:00 UTC (2030-02-01T00:00:00+08:00)"
    assert facts["Ends at"] == "2030-02-20 00:00:00 UTC"
    assert facts["Destination URL"] == "<code>https://shop.example.com/landing</code>"
    assert facts["Link lifetime (days)"] == "14"
    assert facts["Amount per conversion"] == "5"
    assert facts["At most per sharer"] == "20"
    assert facts["At most per day"] == "—"
    # The hourly chart's hours are UTC hours, and say so.
    assert "<h2>Clicks per hour (UTC)</h2>" in page


def test_who_set_a_platform_and_when_reads_as_every_console_time(
    app: Flask, services: Services, staff: None
) -> None:
    client = as_role(app, "marketing")
    created = client.post(
        "/console/campaigns/new", data={**campaign_form(), "csrf_token": token(client)}
    )
    assert created.status_code == 302
    blocked = client.post(
        "/console/campaigns/spring-tea/platforms/wechat",
        data={"status": "blocked", "note": "links refused", "csrf_token": token(client)},
    )
    assert blocked.status_code == 302
    page = client.get("/console/campaigns/spring-tea", headers=EN).text
    set_at = services.campaigns.require("spring-tea").platforms["wechat"].set_at
    assert set_at
    # "2026-11-30 12:20:18 UTC", not "2026-11-30T12:20:18.952561+00:00".
    when = set_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert f"<td>user:marketing@staff.example.com ({when})</td>" in page


def test_a_minted_link_says_when_it_expires_and_when_that_is_before_the_start(
    app: Flask, services: Services, staff: None
) -> None:
    client = as_role(app, "marketing")
    form = campaign_form(starts_at="2030-02-01T00:00:00+08:00", link_ttl_days="14")
    created = client.post("/console/campaigns/new", data={**form, "csrf_token": token(client)})
    assert created.status_code == 302
    minted = client.post(
        "/console/campaigns/spring-tea/links",
        data={"referrer": "ann", "csrf_token": token(client)},
        headers=EN,
    )
    assert minted.status_code == 200
    expires = re.search(r'<p id="expires">Link expires: ([^<]+)</p>', minted.text)
    assert expires and expires.group(1).endswith(" UTC")
    # Fourteen days from today ends years before the start: said, not found out on the day.
    assert 'id="expires-early"' in minted.text
    services.campaigns.update("spring-tea", {"starts_at": None}, "test")
    again = client.post(
        "/console/campaigns/spring-tea/links",
        data={"referrer": "ann", "csrf_token": token(client)},
        headers=EN,
    )
    assert 'id="expires"' in again.text and 'id="expires-early"' not in again.text


#: POST forms that may be sent twice: signing in or out and one's own settings make nothing that
#: a second send would duplicate (and a stuck sign-in form would be worse than a second send).
NOT_ONCE = ("/console/login", "/console/logout", "/console/settings")


def test_every_form_that_makes_or_changes_something_is_sent_once(
    app: Flask, services: Services, staff: None
) -> None:
    """A double click on a slow network sent the campaign, mint and add-a-user forms twice (a
    second link minted, a "slug taken" or "exists already" page instead of the first's answer):
    every POST form carries data-once (static/console.js), but those in NOT_ONCE."""
    _doc, flag = flagged_campaign(services)
    hook, _secret = services.webhooks.create(
        {"url": "https://hooks.example.com/refgate", "events": ["flag.raised"]}, "test"
    )
    admin = as_role(app, "admin")
    admin.post(
        "/console/admin/apikeys",
        data={"name": "crm", "role": "conversion", "csrf_token": token(admin)},
    )
    pages = [
        "/console/campaigns/new",
        "/console/campaigns/tea",
        "/console/campaigns/tea/edit",
        "/console/campaigns/tea/links",
        "/console/flags",
        f"/console/flags/{flag.id}",
        "/console/admin/users",
        "/console/admin/apikeys",
        "/console/webhooks",
        f"/console/webhooks/{hook.id}",
        f"/console/webhooks/{hook.id}/delete",
    ]
    checked = 0
    for path in pages:
        page = admin.get(path, headers=EN)
        assert page.status_code == 200, path
        for form in re.findall(r'<form [^>]*method="post"[^>]*>', page.text):
            action = re.search(r'action="([^"]*)"', form)
            if (action.group(1) if action else path) in NOT_ONCE:
                continue
            assert "data-once" in form, (path, form)
            checked += 1
    # The forms of the task: campaign (new, edit), mint, platform, users, API keys, webhooks.
    assert checked >= 18, checked
