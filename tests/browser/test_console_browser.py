"""The console in a real browser: Debian's chromium driven by Playwright for Python.

The app is served by werkzeug's ``make_server`` in a thread on a free port. Screenshots and the
downloaded poster are kept as test artefacts under ``console/`` in the artefact directory
(tests/browser/__init__.py). A missing chromium fails the run with how to install it: nothing
is skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, Dialog, Page, Route, expect

from gateway.flags import FlagCandidate
from gateway.services import Services
from tests.browser import artifact_dir, chromium, free_port, serving
from tests.conftest import make_app, services_of
from tests.console_helpers import PASSWORD, add_staff, email, flagged_campaign
from tests.test_conversions import record_click

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="session")
def artifacts() -> Path:
    return artifact_dir("console")


@dataclass
class Served:
    url: str
    services: Services


@pytest.fixture
def served(tmp_path: Path, store_url: str) -> Iterator[Served]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = make_app(tmp_path / "data", store_url, REFGATE_PUBLIC_URL=url)
    services = services_of(app)
    add_staff(services)
    try:
        with serving(app, port):
            yield Served(url, services)
    finally:
        services.close()


@pytest.fixture
def page(browser: Browser, served: Served) -> Iterator[Page]:
    context = browser.new_context(locale="en-US", base_url=served.url, accept_downloads=True)
    page = context.new_page()
    problems: list[str] = []
    # Pages answering 4xx (a form with errors) log "Failed to load resource"; anything else the
    # browser reports as an error (a script or style the CSP refused...) fails the test.
    page.on(
        "console",
        lambda m: (
            problems.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    yield page
    context.close()
    assert problems == []


def sign_in(page: Page, role: str) -> None:
    page.goto("/console/login")
    page.get_by_label("Email").fill(email(role))
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text(f"{email(role)} ({role})")).to_be_visible()


def test_marketing_creates_a_campaign_mints_a_link_and_downloads_its_poster(
    page: Page, served: Served, artifacts: Path
) -> None:
    sign_in(page, "marketing")
    page.get_by_role("link", name="New campaign").click()
    page.get_by_label("Slug").fill("spring-tea")
    page.get_by_label("Name").fill("春节奶茶")
    page.get_by_label("Destination URL").fill("not a url")
    page.get_by_label("Amount per conversion").fill("1")
    page.get_by_label("Total budget").fill("500")
    page.get_by_label("Poster title").fill("春节请你喝奶茶")
    page.get_by_role("button", name="Save").click()
    # The error stands next to its field, and what was typed is still there.
    expect(page.locator("#e-destination_url")).to_be_visible()
    expect(page.get_by_label("Name")).to_have_value("春节奶茶")
    page.screenshot(path=artifacts / "marketing-1-validation.png", full_page=True)
    page.get_by_label("Destination URL").fill("https://shop.example.com/landing")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name="春节奶茶")).to_be_visible()
    expect(page.locator("svg.chart").first).to_be_visible()
    page.screenshot(path=artifacts / "marketing-2-campaign.png", full_page=True)
    assert served.services.campaigns.require("spring-tea").reward is not None

    page.get_by_role("link", name="Mint a share link").click()
    page.get_by_label("Sharer id").fill("alice")
    page.get_by_role("button", name="Mint").click()
    expect(page.locator("#share-url")).to_contain_text(f"{served.url}/s/")
    qr = page.get_by_role("img", name="QR code")
    expect(qr).to_be_visible()
    page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth)")
    page.screenshot(path=artifacts / "marketing-3-minted.png", full_page=True)
    with page.expect_download() as download_info:
        page.locator("#download-poster").click()
    download = download_info.value
    poster = artifacts / "poster.png"
    download.save_as(poster)
    assert download.suggested_filename == "spring-tea-alice-poster.png"
    with Image.open(poster) as image:
        assert image.format == "PNG" and image.size == (1240, 1748)
    # A sharer named by an email address with a CRM prefix: ":" is no file name character on
    # Windows or macOS, so it is saved with "_" there (gateway.downloads).
    page.get_by_label("Sharer id").fill("crm:bob@example.com")
    page.get_by_role("button", name="Mint").click()
    expect(page.locator("#share-url")).to_contain_text(f"{served.url}/s/")
    with page.expect_download() as download_info:
        page.locator("#download-png").click()
    assert download_info.value.suggested_filename == "spring-tea-crm_bob@example.com-qr.png"


def test_risk_opens_a_flag_decides_it_and_sees_the_rewards_move(
    page: Page, served: Served, artifacts: Path
) -> None:
    doc, flag = flagged_campaign(served.services)
    rewards = served.services.rewards
    assert rewards.get(doc["id"], "p1")["status"] == "held"  # type: ignore[index]
    page.on("dialog", lambda dialog: dialog.accept())  # "… Decide it?": yes
    sign_in(page, "risk")
    expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
    page.screenshot(path=artifacts / "risk-1-queue.png", full_page=True)
    page.get_by_role("link", name=flag.id).click()
    expect(page.get_by_role("listitem").filter(has_text="8 of 8 clicks")).to_be_visible()
    expect(page.locator("#rewards .status-held")).to_have_count(2)
    page.screenshot(path=artifacts / "risk-2-flag.png", full_page=True)
    page.get_by_label("Note").fill("a real fan with many friends")
    page.locator("#decide-legit").click()
    expect(page.locator("#results")).to_contain_text("rewards 2 held → credited")
    expect(page.locator("#flag-status")).to_have_text("legitimate")
    expect(page.locator("#rewards .status-credited")).to_have_count(2)
    page.screenshot(path=artifacts / "risk-3-released.png", full_page=True)
    assert rewards.get(doc["id"], "p1")["status"] == "credited"  # type: ignore[index]

    # A second sharer, decided fraud from the queue in bulk: the held reward is denied.
    other, other_flag = flagged_campaign(served.services, slug="coffee")
    page.goto("/console/flags")
    page.get_by_label("Select all").check()
    page.get_by_label("Note").fill("farm")
    page.get_by_role("button", name="Fraud").click()
    expect(page.locator("#results")).to_contain_text("held → denied")
    page.screenshot(path=artifacts / "risk-4-clawed-back.png", full_page=True)
    assert served.services.flags.get(other_flag.id).status == "fraud"  # type: ignore[union-attr]
    assert rewards.get(other["id"], "p2")["status"] == "denied"  # type: ignore[index]


#: For each table cell but the long-text ones (.text): the texts that run over more than one
#: line (a text node broken across lines has one client rect per line).
BROKEN_CELLS = """() => {
  const broken = [];
  for (const cell of document.querySelectorAll("main th, main td:not(.text):not([colspan])")) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (!node.textContent.trim()) continue;
      const range = document.createRange();
      range.selectNodeContents(node);
      const lines = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
      if (lines.size > 1) broken.push(node.textContent.trim());
    }
  }
  return broken;
}"""


def test_tables_keep_short_cells_whole_and_wrap_long_text_at_1280_px(
    browser: Browser, served: Served, artifacts: Path
) -> None:
    """The QA pass's pages: a long webhook description crushed the other columns to a few
    letters; the review queue broke scores, flag ids, statuses and headers."""
    for slug in ("tea", "coffee", "a-campaign-with-a-rather-long-slug-for-its-name"):
        doc, _ = flagged_campaign(served.services, slug=slug)
    reasons = (
        "8 of 8 clicks suspicious (network ×8)",
        "velocity: the same browser clicked 7 times within a minute, from 3 networks in turn",
    )
    served.services.flags.raise_flag(
        doc["id"], doc["slug"], FlagCandidate("referrer", "p1", 0.99, reasons), 1.0
    )
    hooks = served.services.webhooks
    for description in ("CRM", "x" * 500, "一个很长的说明" * 40):
        hooks.create(
            {
                "url": "https://hooks.example.com/refgate/" + "path/" * 30,
                "events": ["conversion.created", "reward.credited", "flag.raised"],
                "description": description,
            },
            "test",
        )
    for locale in ("zh-CN", "en-US"):
        context = browser.new_context(
            locale=locale, base_url=served.url, viewport={"width": 1280, "height": 900}
        )
        page = context.new_page()
        page.goto("/console/login")
        page.locator("#email").fill(email("admin"))
        page.locator("#password").fill(PASSWORD)
        page.locator("form button[type=submit]").click()
        page.wait_for_url("**/console/**")
        for path, name in (("/console/flags", "queue"), ("/console/webhooks", "webhooks")):
            page.goto(path)
            page.screenshot(path=artifacts / f"tables-{name}-{locale}.png", full_page=True)
            assert page.evaluate(BROKEN_CELLS) == [], (path, locale)
            # Nothing wider than the window: a wide table scrolls in its box.
            assert page.evaluate("document.documentElement.scrollWidth") <= 1280, (path, locale)
            if name == "webhooks":
                # Every column in view (the second QA pass: the counts were scrolled away).
                overflow = page.eval_on_selector(
                    ".scroll", "box => box.scrollWidth - box.clientWidth"
                )
                assert overflow <= 0, (locale, overflow)
        # The long description wraps; the columns beside it keep their words.
        widths = page.eval_on_selector_all(
            "main table th", "cells => cells.map((c) => c.getBoundingClientRect().width)"
        )
        assert min(widths) > 40, widths
        # An endpoint's page: one unbroken 500-letter description wraps in its box.
        page.goto(f"/console/webhooks/{hooks.endpoints()[1].id}")
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280, locale
        context.close()


#: The campaign page's action buttons (links and one-button forms): [text, top, height, right].
ACTION_BOXES = """() => [...document.querySelectorAll("#actions .button, #actions button")].map(
  (b) => { const r = b.getBoundingClientRect();
           return [b.textContent.trim(), Math.round(r.top), Math.round(r.height), r.right]; })"""


def test_the_campaign_pages_buttons_sit_on_one_line_at_1280_px(
    browser: Browser, served: Served, artifacts: Path
) -> None:
    """At 1280x800 the Pause and End forms and the tree link fell onto a second line (a <form>
    ends the <p> they stood in); narrower, the buttons wrap whole, never their words."""
    flagged_campaign(served.services)
    for locale in ("zh-CN", "en-US"):
        context = browser.new_context(
            locale=locale, base_url=served.url, viewport={"width": 1280, "height": 800}
        )
        page = context.new_page()
        page.goto("/console/login")
        page.locator("#email").fill(email("admin"))
        page.locator("#password").fill(PASSWORD)
        page.locator("form button[type=submit]").click()
        page.wait_for_url("**/console/**")
        page.goto("/console/campaigns/tea")
        page.screenshot(path=artifacts / f"campaign-1280-{locale}.png")
        boxes = page.evaluate(ACTION_BOXES)
        assert len(boxes) == 5, boxes  # mint, edit, pause, end, the tree
        assert len({top for _, top, _, _ in boxes}) == 1, (locale, boxes)
        assert page.evaluate(BROKEN_CELLS) == [], locale
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280, locale
        page.set_viewport_size({"width": 360, "height": 800})
        page.screenshot(path=artifacts / f"campaign-360-{locale}.png")
        boxes = page.evaluate(ACTION_BOXES)
        heights = {height for _, _, height, _ in boxes}
        assert len(heights) == 1, (locale, boxes)  # no button's words broken over two lines
        assert max(right for *_, right in boxes) <= 360, (locale, boxes)
        context.close()


def click_twice(page: Page, name: str, path: str) -> None:
    """Two clicks on the button, the second while the first's POST to ``path`` is on its way
    (held until both clicks are in), as a person double-clicking on a slow network: the page
    sends the form once."""
    held: list[Route] = []

    def hold(route: Route) -> None:
        if route.request.method == "POST":
            held.append(route)
        else:
            route.continue_()

    page.route(f"**{path}", hold)
    button = page.get_by_role("button", name=name)
    button.scroll_into_view_if_needed()
    box = button.bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.click(x, y)  # the mouse, not the locator: that waits for the navigation
    page.wait_for_timeout(100)
    assert len(held) == 1
    page.mouse.click(x, y)
    page.wait_for_timeout(100)
    assert len(held) == 1, "sent twice"
    held[0].continue_()
    page.unroute(f"**{path}")


def test_a_double_click_on_register_or_rotate_sends_the_form_once_and_shows_the_secret(
    page: Page, served: Served
) -> None:
    sign_in(page, "marketing")
    page.goto("/console/webhooks")
    page.locator("#f-url").fill("https://hooks.example.com/refgate")
    page.locator('input[value="flag.raised"]').check()
    click_twice(page, "Register", "/console/webhooks")
    expect(page.locator("#new-secret")).to_be_visible()
    [endpoint] = served.services.webhooks.endpoints()
    assert page.locator("#new-secret").inner_text() == endpoint.secret
    page.goto(f"/console/webhooks/{endpoint.id}")
    click_twice(page, "Rotate the secret", f"/console/webhooks/{endpoint.id}/rotate")
    expect(page.locator("#new-secret")).to_be_visible()
    rotated = served.services.webhooks.require(endpoint.id)
    assert page.locator("#new-secret").inner_text() == rotated.secret
    assert rotated.previous_secret == endpoint.secret  # one rotation, not two


def test_a_double_click_on_save_mint_or_add_sends_the_form_once(page: Page, served: Served) -> None:
    """A campaign saved twice showed "slug taken" instead of the campaign, a link minted twice
    made two links, a user added twice showed "exists already": each form is sent once."""

    def made(action: str) -> int:
        return sum(e.action == action for e in served.services.audit.recent())

    sign_in(page, "admin")
    page.goto("/console/campaigns/new")
    page.get_by_label("Slug").fill("spring-tea")
    page.get_by_label("Name").fill("春节奶茶")
    page.get_by_label("Destination URL").fill("https://shop.example.com/landing")
    click_twice(page, "Save", "/console/campaigns/new")
    expect(page.get_by_role("heading", name="春节奶茶")).to_be_visible()
    assert made("campaign.create") == 1

    page.goto("/console/campaigns/spring-tea/edit")
    page.get_by_label("Name").fill("春节奶茶 2")
    click_twice(page, "Save", "/console/campaigns/spring-tea/edit")
    expect(page.get_by_role("heading", name="春节奶茶 2")).to_be_visible()
    assert made("campaign.edit") == 1

    page.goto("/console/campaigns/spring-tea/links")
    page.get_by_label("Sharer id").fill("alice")
    click_twice(page, "Mint", "/console/campaigns/spring-tea/links")
    expect(page.locator("#share-url")).to_contain_text(f"{served.url}/s/")
    assert made("link.mint") == 1

    page.goto("/console/admin/users")
    page.locator("#new-email").fill("new@staff.example.com")
    page.locator("#new-password").fill(PASSWORD)
    click_twice(page, "Add", "/console/admin/users")
    expect(page.get_by_role("cell", name="new@staff.example.com")).to_be_visible()
    expect(page.locator(".field-error")).to_have_count(0)
    assert made("user.add") == 1


def test_a_decision_that_moves_money_is_asked_first_and_sent_once(
    page: Page, served: Served
) -> None:
    """Fraud on a flag holding rewards asked nothing, and a double click sent it twice: two
    decisions in the audit log, and the page showed the second's "no reward changed"."""
    doc, flag = flagged_campaign(served.services)
    asked: list[str] = []
    answer = {"yes": False}

    def on_dialog(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.accept() if answer["yes"] else dialog.dismiss()

    page.on("dialog", on_dialog)
    sign_in(page, "risk")
    page.goto(f"/console/flags/{flag.id}")
    page.locator("#decide-fraud").click()
    assert asked == [
        "Fraud denies the 2 held rewards and claws back the 0 credited ones. Decide it?"
    ]
    expect(page.locator("#flag-status")).to_have_text("open")
    assert served.services.flags.get(flag.id).status == "open"  # type: ignore[union-attr]

    answer["yes"] = True
    click_twice(page, "Fraud", f"/console/flags/{flag.id}/decision")
    expect(page.locator("#results")).to_contain_text("rewards 2 held → denied")
    assert len(asked) == 2  # asked once more, not for the second click
    decisions = [e for e in served.services.audit.recent() if e.action == "flag.decide"]
    assert len(decisions) == 1
    assert served.services.rewards.get(doc["id"], "p1")["status"] == "denied"  # type: ignore[index]

    # In the queue, Enter in the note sends the form with its first button (Fraud): asked too.
    _, other = flagged_campaign(served.services, slug="coffee")
    answer["yes"] = False
    page.goto("/console/flags")
    page.get_by_label("Select all").check()
    page.get_by_label("Note").fill("farm")
    page.get_by_label("Note").press("Enter")
    assert asked[-1].startswith("Decide every selected flag fraud?")
    expect(page.get_by_label("Note")).to_have_value("farm")
    assert served.services.flags.get(other.id).status == "open"  # type: ignore[union-attr]


def test_the_decision_is_one_step_from_the_top_of_a_long_flag_page(
    page: Page, served: Served
) -> None:
    """A sharer with hundreds of referrals put the decision below two tables of hundreds of
    rows (each with links): a keyboard user tabbed through all of them."""
    doc, flag = flagged_campaign(served.services)
    for n in range(40):
        served.services.conversions.convert(record_click(served.services, doc, "farmer"), f"x{n}")
    sign_in(page, "risk")
    page.goto(f"/console/flags/{flag.id}")
    page.locator("#to-decide").focus()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Note")).to_be_focused()
    assert page.evaluate("() => document.getElementById('note').getBoundingClientRect().top") < 800


def test_marketing_edits_a_webhook_endpoint_on_its_page(
    page: Page, served: Served, artifacts: Path
) -> None:
    """The edit form of an endpoint's page in a browser: changed URL and events are shown once
    saved; a private address is refused next to the URL field, with what was typed kept (the
    form is sent once, data-once, and must work again on the page that refused it)."""
    hooks = served.services.webhooks
    endpoint, _ = hooks.create(
        {"url": "https://hooks.example.com/refgate", "events": ["flag.raised"]}, "test"
    )
    sign_in(page, "marketing")
    page.goto("/console/webhooks")
    page.locator(f'a[href="/console/webhooks/{endpoint.id}"]').first.click()
    expect(page).to_have_url(f"{served.url}/console/webhooks/{endpoint.id}")
    form = page.locator(f'form[action="/console/webhooks/{endpoint.id}/edit"]')
    expect(form.get_by_label("URL")).to_have_value("https://hooks.example.com/refgate")
    form.get_by_label("URL").fill("https://hooks.example.com/v2")
    form.locator('input[value="flag.raised"]').uncheck()
    form.locator('input[value="conversion.created"]').check()
    form.locator('input[value="reward.credited"]').check()
    form.get_by_label("Description").fill("CRM")
    form.get_by_role("button", name="Save").click()
    expect(page.get_by_text("The endpoint's settings were saved.")).to_be_visible()
    settings = page.locator("dl.facts")
    expect(settings).to_contain_text("https://hooks.example.com/v2")
    expect(settings).to_contain_text("conversion.created")
    expect(settings).to_contain_text("reward.credited")
    expect(settings).not_to_contain_text("flag.raised")
    expect(settings).to_contain_text("CRM")
    # The form shows what is saved now.
    expect(form.get_by_label("URL")).to_have_value("https://hooks.example.com/v2")
    expect(form.locator('input[value="reward.credited"]')).to_be_checked()
    expect(form.locator('input[value="flag.raised"]')).not_to_be_checked()
    page.screenshot(path=artifacts / "webhook-edit-1-saved.png", full_page=True)
    saved = hooks.require(endpoint.id)
    assert saved.url == "https://hooks.example.com/v2"
    assert saved.events == ["conversion.created", "reward.credited"]

    form.get_by_label("URL").fill("http://10.0.0.1/hook")
    form.get_by_label("Description").fill("typed")
    form.get_by_role("button", name="Save").click()
    expect(page.locator("#e-url")).to_contain_text("private")
    expect(page.get_by_role("alert")).to_contain_text("Please correct the fields marked below.")
    expect(form.get_by_label("URL")).to_have_value("http://10.0.0.1/hook")
    expect(form.get_by_label("URL")).to_have_attribute("aria-invalid", "true")
    expect(form.get_by_label("Description")).to_have_value("typed")
    expect(form.locator('input[value="reward.credited"]')).to_be_checked()
    page.screenshot(path=artifacts / "webhook-edit-2-refused.png", full_page=True)
    assert hooks.require(endpoint.id) == saved
