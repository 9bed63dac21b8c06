"""The console shows the services' (the API's, English) messages in the reader's language."""

from __future__ import annotations

import re
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from gateway.campaigns import CampaignCreate, LinkRequest, validate
from gateway.console.messages import translated
from gateway.destinations import InvalidDestination, normalise_destination
from gateway.errors import ApiError
from gateway.services import Services
from gateway.users import UserError
from tests.console_helpers import add_staff, login, token
from tests.test_destinations import payloads

ZH = {"Accept-Language": "zh-CN"}
HAN = re.compile(r"[\u4e00-\u9fff]")


def destination_reasons() -> set[str]:
    """Every reason the destination rules give for the open-redirect corpus and a few more."""
    extra = ["", " ", "x" * 2100, "https://shop.example.com:99999/", "https://shop.example.com:x/"]
    reasons = set()
    for raw in [*payloads(), *extra, 42]:
        for allowed in ((), ("shop.example.com",)):
            try:
                normalise_destination(raw, allowed)
            except InvalidDestination as exc:
                reasons.add(exc.reason)
    return reasons


def field_messages(model: type, data: dict[str, object]) -> dict[str, str]:
    try:
        validate(model, data)
    except ApiError as exc:
        return exc.fields
    raise AssertionError(f"{data} passed")


def test_every_destination_reason_reads_in_chinese(app: Flask) -> None:
    reasons = destination_reasons()
    assert len(reasons) >= 10
    with app.test_request_context(headers=ZH):
        for reason in reasons:
            assert HAN.search(translated(reason)), reason


def test_the_campaign_fields_messages_read_in_chinese(app: Flask) -> None:
    bad = {
        "slug": "Bad Slug!",
        "name": " ",
        "destination_url": "",
        "starts_at": "tomorrow",
        "link_ttl_days": 0,
        "share_text": "x" * 301,
        "reward": {"amount": -1, "budget_total": "ten"},
        "poster": {"title": "t" * 41},
        "colour": "red",
    }
    fields = field_messages(CampaignCreate, bad)
    later = field_messages(
        CampaignCreate,
        {
            "slug": "ok",
            "name": "n",
            "destination_url": "https://shop.example.com/",
            "starts_at": "2026-02-01T00:00:00+08:00",
            "ends_at": "2026-01-01T00:00:00+08:00",
            "link_ttl_days": 4000,
        },
    )
    person = field_messages(LinkRequest, {"referrer": "a b"})
    messages = {*fields.values(), *later.values(), *person.values()}
    assert len(messages) >= 9, messages
    with app.test_request_context(headers=ZH):
        for message in messages:
            assert HAN.search(translated(message)), message
    # The API says what a slug may hold, not the regular expression it is checked with.
    # Precisely: ASCII letters only ("letters" would promise 'é' and '张' too).
    assert fields["slug"] == (
        "must be 1 to 64 lowercase ASCII letters (a-z), digits (0-9) or '-', not starting or "
        "ending with '-'"
    )
    assert person["referrer"] == (
        "must be 1 to 128 ASCII letters (A-Z, a-z), digits (0-9) or . _ : @ + -"
    )
    with app.test_request_context(headers=ZH):
        assert translated(person["referrer"]) == (
            "须为 1 到 128 个英文字母（A-Z、a-z）、数字（0-9）或 . _ : @ + -"
        )
    assert field_messages(LinkRequest, {"referrer": "zhāng"}) == person  # letters, not ASCII


def test_account_messages_read_in_chinese(app: Flask, services: Services) -> None:
    add_staff(services)
    problems = []
    for email, role, password in (
        ("not-an-email", "risk", "a long enough password"),
        ("new@staff.example.com", "boss", "a long enough password"),
        ("new@staff.example.com", "risk", "short"),
        ("risk@staff.example.com", "risk", "a long enough password"),
    ):
        try:
            services.users.add(email, role, password)
        except UserError as exc:
            problems.append(exc.message)
    assert len(problems) == 4
    with app.test_request_context(headers=ZH):
        for message in problems:
            assert HAN.search(translated(message)), message
        # A message the table does not know is shown as it is, not hidden.
        assert translated("something new went wrong") == "something new went wrong"


def test_console_pages_show_service_messages_in_chinese(app: Flask, services: Services) -> None:
    add_staff(services)
    client: FlaskClient = app.test_client()
    assert login(client, "admin").status_code == 302

    def page(response: object) -> str:
        return str(response.text)  # type: ignore[attr-defined]

    missing = client.get("/console/campaigns/nope", headers=ZH)
    assert missing.status_code == 404
    assert "没有活动 nope。" in page(missing)
    assert "no campaign" not in page(missing)
    wrong_kind = client.get("/console/flags?kind=zzz", headers=ZH)
    assert wrong_kind.status_code == 400
    assert "类型须为以下之一：click、referrer、participant、cluster。" in page(wrong_kind)
    wrong_status = client.get("/console/flags?status=bad", headers=ZH)
    assert wrong_status.status_code == 400
    assert "状态须为以下之一" in page(wrong_status)

    form = {
        "slug": "tea",
        "name": "Tea",
        "destination_url": "https://shop.example.com/x",
        "link_ttl_days": "30",
        "csrf_token": token(client),
    }
    assert client.post("/console/campaigns/new", data=form, headers=ZH).status_code == 302
    taken = client.post("/console/campaigns/new", data=form, headers=ZH)
    assert taken.status_code == 409
    assert "标识为 tea 的活动已存在" in page(taken)
    bad = client.post(
        "/console/campaigns/new",
        data={**form, "slug": "Bad Slug", "name": "", "destination_url": "javascript:alert(1)"},
        headers=ZH,
    )
    assert bad.status_code == 400
    errors = re.findall(r'class="field-error"[^>]*>([^<]*)<', page(bad))
    assert len(errors) == 3, errors
    assert all(HAN.search(error) for error in errors), errors
    assert "须为以 http:// 或 https:// 开头的完整网址" in errors
    ghost = client.get("/console/campaigns/tea/tree?node=ghost", headers=ZH)
    assert ghost.status_code == 404
    assert "ghost 不在本活动的邀请树中。" in page(ghost)
    assert services.campaigns.get("tea") is not None  # the refused forms changed nothing
    assert services.campaigns.get("bad-slug") is None


def test_states_kinds_and_decisions_read_in_chinese(app: Flask, services: Services) -> None:
    """The services' words (open, held, live, qr_first...) are shown through the catalogue,
    while forms still send them as they are."""
    from tests.console_helpers import flagged_campaign

    add_staff(services)
    _doc, flag = flagged_campaign(services)
    client: FlaskClient = app.test_client()
    assert login(client, "admin").status_code == 302
    queue = client.get("/console/flags", headers=ZH).text
    assert '<span class="status status-open">待审核</span>' in queue
    assert "<td>分享者</td>" in queue  # the flag's kind
    assert '<option value="fraud" >作弊</option>' in queue  # a filter sends the word itself
    page = client.get(f"/console/flags/{flag.id}", headers=ZH).text
    assert '<span class="status status-held">冻结</span>' in page
    # Why the rewards are held, and the evidence's headings, in words too.
    assert '<td title="flagged">已被标记</td>' in page and ">flagged<" not in page
    decided = client.post(
        f"/console/flags/{flag.id}/decision",
        data={"decision": "legit", "csrf_token": token(client)},
        headers=ZH,
    )
    assert "2 冻结 → 已发放" in client.get(decided.location, headers=ZH).text
    campaigns = client.get("/console/campaigns", headers=ZH).text
    assert '<span class="state state-live">进行中</span>' in campaigns
    users = client.get("/console/admin/users", headers=ZH).text
    # The add-a-user form's roles too (they were the bare codes, sent as the option's text).
    assert '<option value="risk" >风控</option>' in users


EN = {"Accept-Language": "en"}
#: What a code looks like: lowercase words joined by "_" (qr_first) or "name:kind" (tree:ring).
CODE = re.compile(r"^[a-z]+(?:[_:][a-z]+)+$")


def test_every_code_reads_in_english_words_and_in_chinese(app: Flask) -> None:
    """The English console once showed the codes themselves (``qr_first``, ``clawed_back``,
    ``deny_credit``): each label is words in English and has its Chinese."""
    from gateway.console.labels import LABELS, label

    with app.test_request_context(headers=EN):
        english = {code: label(code) for code in LABELS}
    assert [w for w in english.values() if CODE.match(w) or "_" in w] == []
    assert english["qr_first"] == "QR code first" and english["clawed_back"] == "clawed back"
    assert english["deny_credit"] == "no credit" and english["legit"] == "legitimate"
    with app.test_request_context(headers=ZH):
        chinese = {code: label(code) for code in LABELS}
    assert [code for code, text in chinese.items() if not HAN.search(text)] == []
    assert chinese["qr_first"] == "二维码优先" and chinese["clawed_back"] == "已追回"
    assert label("something_new") == "something_new"  # an unknown code is shown, not hidden


def test_the_campaign_and_flag_pages_show_no_codes_in_english(
    app: Flask, services: Services
) -> None:
    """Strategies, statuses and reasons in words; the codes stay where they are data (form
    values, a reason's title for the risk team)."""
    from tests.console_helpers import flagged_campaign

    add_staff(services)
    _doc, flag = flagged_campaign(services)
    client: FlaskClient = app.test_client()
    assert login(client, "admin").status_code == 302
    campaign = client.get("/console/campaigns/tea", headers=EN).text
    assert "<td>QR code first</td>" in campaign and "qr_first" not in campaign
    chinese = client.get("/console/campaigns/tea", headers=ZH).text
    assert "<td>二维码优先</td>" in chinese and "qr_first" not in chinese
    decided = client.post(
        f"/console/flags/{flag.id}/decision",
        data={"decision": "fraud", "seen": "open", "csrf_token": token(client)},
        headers=EN,
    )
    page = client.get(decided.location, headers=EN).text
    assert "rewards 2 held → denied" in page
    assert '<td title="reviewed_fraud">reviewed: fraud</td>' in page
    assert '<input type="hidden" name="seen" value="fraud">' in page  # the form sends the code
    text = re.sub(r"<[^>]*>", " ", page)  # what people read, attributes left out
    assert re.findall(r"\b[a-z]+_[a-z_]+\b", text) == []
    zh = client.get(f"/console/flags/{flag.id}", headers=ZH).text
    assert '<td title="reviewed_fraud">审核判定为欺诈</td>' in zh


def test_every_reason_a_conversion_can_be_denied_for_a_clicks_outcome_has_words(
    app: Flask,
) -> None:
    """``click_<outcome>`` for each outcome that earns no credit (the label once said
    ``click_block``, a word the ledger never writes)."""
    from gateway.console.labels import label
    from gateway.conversions import creditable
    from gateway.events import COUNTED_OUTCOMES, CREDITABLE_OUTCOMES

    outcomes = (COUNTED_OUTCOMES | {"preview"}) - CREDITABLE_OUTCOMES
    assert outcomes == {"blocked", "preview"}
    with app.test_request_context(headers=ZH):
        for outcome in outcomes:
            verdict = creditable({"outcome": outcome, "ts": 0.0}, 60.0)
            reason = verdict.removeprefix("deny:")
            assert reason == f"click_{outcome}", verdict
            assert re.search("[\u4e00-\u9fff]", label(reason)), reason


ROOT = Path(__file__).resolve().parent.parent


def ledger_reasons() -> set[str]:
    """Every reason a reward is written with, read from where they are decided: the click's
    verdict (``gateway.conversions.creditable``), the conversion (``convert.lua``), the reviews'
    moves (``gateway.rewards``, which settle_reward.lua writes), and the README's reasons."""
    source = ROOT / "gateway"
    found = set(re.findall(r'"(?:hold|deny):([a-z_]+)"', (source / "conversions.py").read_text()))
    convert = (source / "store" / "lua" / "convert.lua").read_text()
    found |= set(re.findall(r"status, reason = '[a-z_]+', '([a-z_]+)'", convert))
    rewards = (source / "rewards.py").read_text()
    found |= set(
        re.findall(r'"(?:hold|release|fraud|restore|restore_held)",\s*"([a-z_]+)"', rewards)
    )
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| status | reason |") : readme.index("Afterwards a reward moves")]
    for item in re.split(r"[;|]", table):
        found |= set(re.findall(r"`([a-z_]+)`", item.partition("(")[0]))
    moves = readme[readme.index("Afterwards a reward moves") :]
    found |= set(re.findall(r"\((?:reason )?`([a-z_]+)`", moves[: moves.index("\n\n")]))
    return found


def test_every_reward_reason_the_ledger_writes_has_words(app: Flask) -> None:
    """``reviewed_legit`` was once shown raw in the rewards table."""
    from gateway.console.labels import label

    reasons = ledger_reasons()
    expected = {"flagged", "reviewed_legit", "reviewed_fraud", "referrer_under_review"}
    assert expected | {"budget_exhausted", "click_blocked", "daily_cap"} <= reasons, reasons
    with app.test_request_context(headers=ZH):
        unlabelled = sorted(r for r in reasons if not HAN.search(label(r)))
    assert unlabelled == []


def test_a_referrers_click_tally_reads_in_words(app: Flask, services: Services) -> None:
    """The line under the detectors' table: every field the flagger tallies, in words."""
    from gateway.store.keys import campaign_keys
    from tests.console_helpers import flagged_campaign

    add_staff(services)
    doc, flag = flagged_campaign(services)
    flagger = (ROOT / "gateway" / "flagger.py").read_text()
    fields = re.findall(r'\("([a-z_]+)", tally\.', flagger)
    assert {"clicks", "suspicious", "self"} <= set(fields)
    tally = {name: n for n, name in enumerate(fields, start=1)}
    key = campaign_keys(doc["id"]).referrer_tally(flag.subject)
    services.store.main.hset(key, mapping={**tally, "d:network": 3})
    client: FlaskClient = app.test_client()
    assert login(client, "risk").status_code == 302
    page = client.get(f"/console/flags/{flag.id}", headers=ZH).text
    line = re.search(r'<p id="tally">(.*?)</p>', page)
    assert line, "no tally"
    words = re.sub(r'<span class="num">\d+</span>', "", line.group(1)).split(" · ")
    assert len(words) == len(fields) and all(HAN.search(w) for w in words), words
    assert not any(name in line.group(1) for name in fields)
