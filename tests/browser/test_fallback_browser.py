"""The fallback ladder in a real browser: WeChat gets a page that works, Safari goes straight on.

Chromium (Debian's, through Playwright) plays both: with WeChat's user agent it must get the
fallback page, stay on it (no automatic jump out of the app), show a QR code that a real decoder
reads back from the screenshot as this sharer's scan link, and copy the share link to the
clipboard; with Safari's it must land on the campaign's destination with the click id. Runs on
the Redis server store only: what is under test is the page in the browser, and the store code
below it runs on every store in the rest of the suite. Screenshots are kept as artefacts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext

from tests.browser import artifact_dir, chromium, free_port, serving
from tests.conftest import SERVER_URL, _flush, bearer, make_app, services_of
from tests.scanning import image_of, svg_to_image, zxing_read

WECHAT = (
    "Mozilla/5.0 (Linux; Android 14; 23127PN0CC Build/UKQ1.230804.001; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/122.0.6261.120 Mobile Safari/537.36 XWEB/1220133 "
    "MMWEBSDK/20240301 MMWEBID/1234 MicroMessenger/8.0.49.2600(0x28003133) WeChat/arm64 "
    "Weixin NetType/WIFI Language/zh_CN ABI/arm64"
)
SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
#: The landing page: a second loopback server, reached under a name of its own (Chromium's
#: host resolver maps it), since the gateway only redirects to configured hostnames.
LANDING_HOST = "shop.refgate.test"
PHONE = {"width": 390, "height": 844}


def _landing_app() -> Flask:
    landing = Flask("landing")
    landing.add_url_rule("/landing", "landing", lambda: "<h1>landing</h1>")
    return landing


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The app served over HTTP with a campaign and alice's link; its public URL is its own."""
    _flush(SERVER_URL)
    port, landing_port = free_port(), free_port()
    destination = f"http://{LANDING_HOST}:{landing_port}/landing?src=share"
    app: Flask = make_app(
        tmp_path_factory.mktemp("browser") / "data",
        SERVER_URL,
        REFGATE_PUBLIC_URL=f"http://127.0.0.1:{port}",
    )
    services = services_of(app)
    admin = bearer(services.api_keys.create("browser-admin", "admin")[0])
    client = app.test_client()
    created = client.post(
        "/api/v1/campaigns",
        json={"slug": "milk-tea", "name": "Milk tea", "destination_url": destination},
        headers=admin,
    )
    assert created.status_code == 201, created.json
    minted = client.post(
        "/api/v1/campaigns/milk-tea/links", json={"referrer": "alice"}, headers=admin
    )
    assert minted.status_code == 201, minted.json
    with (
        serving(app, port) as base,
        serving(_landing_app(), landing_port),
        chromium(f"--host-resolver-rules=MAP {LANDING_HOST} 127.0.0.1") as browser,
    ):
        yield {
            "app": app,
            "base": base,
            "browser": browser,
            "link": minted.json,
            "admin": admin,
            "destination": destination,
        }
    services.close()


def _phone(browser: Browser, agent: str) -> BrowserContext:
    return browser.new_context(
        user_agent=agent,
        viewport=PHONE,
        device_scale_factor=2,
        locale="en-US",
        extra_http_headers={"Accept-Language": "en-US,en;q=0.9"},
    )


def _decoded(png: bytes) -> list[str]:
    return [found.text for found in zxing_read(image_of(png))]


def test_wechat_gets_a_fallback_page_whose_qr_code_scans_as_the_link(
    site: dict[str, Any],
) -> None:
    share_url = site["link"]["url"]
    context = _phone(site["browser"], WECHAT)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site["base"])
    page = context.new_page()
    response = page.goto(share_url)
    assert response is not None and response.status == 200
    page.wait_for_timeout(1500)  # long enough for any automatic jump to show itself
    assert page.url == share_url, "the fallback page must not leave the app on its own"

    for way in ("#qr", "#guide", "#copy"):
        assert page.locator(way).is_visible(), way
    qr = page.locator("#qr img.qr")
    assert qr.evaluate("img => img.complete && img.naturalWidth > 0"), "QR image did not load"
    shots = artifact_dir("browser")
    page.screenshot(path=str(shots / "wechat-fallback.png"), full_page=True)

    # What a second phone would read off this screen, and what the code is meant to say.
    scanned = _decoded(qr.screenshot(path=str(shots / "wechat-fallback-qr.png")))
    served = site["app"].test_client().get(urlsplit(qr.get_attribute("src") or "").path)
    assert served.status_code == 200
    expected = [found.text for found in zxing_read(svg_to_image(served.data))]
    assert scanned == expected and len(scanned) == 1
    assert scanned[0].startswith(f"{site['base']}/s/")

    # The copy button puts the share link (not the destination) on the clipboard.
    page.locator("#copy button").click()
    assert page.evaluate("navigator.clipboard.readText()") == share_url
    assert page.locator("#share-url").input_value() == share_url
    context.close()


def test_safari_goes_straight_to_the_destination_with_the_click_id(
    site: dict[str, Any],
) -> None:
    context = _phone(site["browser"], SAFARI)
    page = context.new_page()
    page.goto(site["link"]["url"])
    landed = urlsplit(page.url)
    assert f"{landed.scheme}://{landed.netloc}{landed.path}" == site["destination"].split("?")[0]
    query = parse_qs(landed.query)
    assert query["src"] == ["share"] and len(query["rg_click"][0]) > 8
    assert page.locator("h1").inner_text() == "landing"
    page.screenshot(path=str(artifact_dir("browser") / "safari-landing.png"))
    context.close()


def test_the_scanned_code_leads_a_phone_browser_to_the_destination(
    site: dict[str, Any],
) -> None:
    """Scan the QR code on the WeChat page with the phone's browser: it arrives."""
    context = _phone(site["browser"], WECHAT)
    page = context.new_page()
    page.goto(site["link"]["url"])
    scanned = _decoded(page.locator("#qr img.qr").screenshot())
    context.close()

    phone = _phone(site["browser"], SAFARI)
    page = phone.new_page()
    page.goto(scanned[0])
    assert urlsplit(page.url).hostname == LANDING_HOST
    assert "rg_click" in parse_qs(urlsplit(page.url).query)
    phone.close()


def test_a_blocked_platform_puts_the_qr_code_first_and_says_why(site: dict[str, Any]) -> None:
    client = site["app"].test_client()
    blocked = client.put(
        "/api/v1/campaigns/milk-tea/platforms/wechat",
        json={"status": "blocked", "note": "browser test"},
        headers=site["admin"],
    )
    assert blocked.status_code == 200, blocked.json
    try:
        context = _phone(site["browser"], WECHAT)
        page = context.new_page()
        page.goto(site["link"]["url"])
        ways = page.locator("section.way").evaluate_all("sections => sections.map(s => s.id)")
        assert ways[0] == "qr"
        assert "does not open this link directly" in page.locator("p.lead").inner_text()
        page.screenshot(
            path=str(Path(artifact_dir("browser")) / "wechat-blocked.png"), full_page=True
        )
        context.close()
    finally:
        client.put(
            "/api/v1/campaigns/milk-tea/platforms/wechat",
            json={"status": "ok", "note": "browser test done"},
            headers=site["admin"],
        )


@pytest.mark.parametrize("width", [320, 280])
def test_the_fallback_page_fits_a_narrow_phone_without_sideways_scrolling(
    site: dict[str, Any], width: int
) -> None:
    """An iPhone SE is 320 px wide, a folded Galaxy Fold 280: the copy row (the link's field
    and its button) must shrink with the page, not push it wider than the screen."""
    context = site["browser"].new_context(
        user_agent=WECHAT,
        viewport={"width": width, "height": 740},
        device_scale_factor=3,
        is_mobile=True,
        has_touch=True,
        locale="en-US",
        extra_http_headers={"Accept-Language": "en-US,en;q=0.9"},
    )
    page = context.new_page()
    page.goto(site["link"]["url"])
    assert page.evaluate("document.documentElement.scrollWidth") == width
    button = page.locator("#copy button").bounding_box()
    assert button is not None and button["x"] + button["width"] <= width
    page.screenshot(path=str(artifact_dir("browser") / f"wechat-fallback-{width}.png"))
    context.close()


def test_copy_still_works_where_the_webview_refuses_the_clipboard_api(
    site: dict[str, Any],
) -> None:
    """Android's WebView (WeChat's, most in-app browsers') refuses navigator.clipboard unless the
    app grants a permission: the button copies the selected link instead, and says so."""
    share_url = site["link"]["url"]
    context = _phone(site["browser"], WECHAT)
    context.add_init_script(
        "navigator.clipboard.writeText = () => "
        "Promise.reject(new DOMException('Write permission denied.', 'NotAllowedError'));"
    )
    page = context.new_page()
    page.goto(share_url)
    page.evaluate(
        "window.copied = null;"
        "document.addEventListener('copy', () => { window.copied = String(getSelection()); });"
    )
    page.locator("#copy button").click()
    page.wait_for_function("window.copied !== null", timeout=2000)
    assert page.evaluate("window.copied") == share_url
    assert page.locator("#copy button").inner_text() == "Copied"
    # Said aloud too: the button is a live region, so a screen reader announces "Copied".
    assert page.locator("#copy button").get_attribute("aria-live") == "polite"
    context.close()
