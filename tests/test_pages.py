"""Click pages kept per shape and filled in per click (gateway.pages) must be byte for byte the
page a fresh render gives, for every page the click path shows, in every language, and must
follow an edited campaign at once."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import EnvironBuilder

from gateway.campaigns import ClickView
from gateway.pages import ClickPages
from gateway.platforms import SCAN_IN_APP
from gateway.services import Services

WECHAT = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN"
)
#: Values with every character HTML escaping changes, and some it does not.
AWKWARD = "a&b<c>d\"e'f 春节 %(x)s {{ y }}"


def environ(language: str) -> dict[str, Any]:
    return EnvironBuilder(
        path="/s/token",
        base_url="https://go.example.com/",
        query_string="utm=1&x=<2>",
        headers=[("Accept-Language", language), ("User-Agent", WECHAT)],
    ).get_environ()


def pages_of(view: ClickView) -> list[tuple[str, dict[str, Any], list[dict[str, str]]]]:
    """(template, shared context, per-click slots of two clicks) of each page with slots."""
    return [
        (
            "click/challenge.html",
            {"view": view},
            [{"token": "tok.en1", "challenge": "c1"}, {"token": AWKWARD, "challenge": AWKWARD}],
        ),
        (
            "click/fallback.html",
            {
                "view": view,
                "app_name": "WeChat",
                "guide": "Tap ··· then Open in Browser",
                "scan": SCAN_IN_APP,
                "strategy": "qr_first",
                "blocked": True,
            },
            [
                {
                    "share_url": "https://go.example.com/s/tok",
                    "qr_url": "/s/tok/qr.svg",
                    "continue_url": "https://shop.example.com/landing?src=share&rg_click=1.x",
                },
                {"share_url": AWKWARD, "qr_url": AWKWARD, "continue_url": AWKWARD},
            ],
        ),
        ("click/preview.html", {"view": view}, [{"page_url": "https://a/s/t?u=1&v=2"}]),
        ("click/gone.html", {"view": view, "reason": "expired"}, [{}]),
        ("click/not_found.html", {}, [{}]),
    ]


@pytest.mark.parametrize("language", ["zh-CN,zh;q=0.9", "zh-TW,zh;q=0.9", "en-US,en;q=0.8", ""])
def test_a_kept_page_is_the_page_a_fresh_render_gives(
    services: Services, campaign: dict[str, Any], language: str
) -> None:
    view = services.campaigns.cached_view(campaign["id"]) or services.campaigns.load_view(
        campaign["id"]
    )
    assert view is not None
    gateway = services.gateway
    kept = ClickPages(gateway.render)
    env = environ(language)
    for template, context, clicks in pages_of(view):
        for slots in [*clicks, *clicks]:  # the second round is served from the kept shape
            fresh = gateway.render(env, template, **context, **slots)
            assert kept(env, template, slots, context) == fresh, (template, slots)
            assert AWKWARD not in fresh  # escaped wherever it is printed
    assert len(kept._shapes) == 5  # one shape per page: the slots were filled, not re-rendered


def test_the_fallback_page_follows_an_edited_campaign(
    client: FlaskClient, admin: dict[str, str], link: dict[str, Any]
) -> None:
    path = link["url"].split("localhost", 1)[-1]
    first = client.get(path, headers={"User-Agent": WECHAT})
    assert first.status_code == 200 and "Milk tea" in first.text
    edited = client.patch("/api/v1/campaigns/milk-tea", json={"name": "春节奶茶"}, headers=admin)
    assert edited.status_code == 200, edited.json
    again = client.get(path, headers={"User-Agent": WECHAT})
    assert "春节奶茶" in again.text and "Milk tea" not in again.text
    # Each click's own id is in its page, not the first click's.
    assert first.text.split("rg_click=")[1][:20] != again.text.split("rg_click=")[1][:20]


def test_a_template_that_changes_a_value_is_rendered_each_time() -> None:
    """A slot printed through a filter cannot be filled in: that page is rendered each time."""
    calls = []

    def render(environ: dict[str, Any], template: str, **context: Any) -> str:
        calls.append(context)
        return f"<p>{context['name'].upper()}</p>"

    pages = ClickPages(render)
    assert pages({}, "t.html", {"name": "ann"}, {}) == "<p>ANN</p>"
    assert pages({}, "t.html", {"name": "bob"}, {}) == "<p>BOB</p>"
    # The first click: its own page and the marker render, which did not fill in to it; then
    # a fresh render for each later click.
    assert len(calls) == 3


def test_the_fallback_page_names_the_app_in_the_readers_language(
    client: FlaskClient, link: dict[str, Any], admin: dict[str, str]
) -> None:
    blocked = client.put(
        "/api/v1/campaigns/milk-tea/platforms/wechat", json={"status": "blocked"}, headers=admin
    )
    assert blocked.status_code == 200, blocked.json
    for language, text, lang in (
        ("zh-CN", "微信 无法直接打开此链接", "zh-CN"),
        # Taiwan and Hong Kong (LINE's and Facebook's readers too) read Traditional characters.
        ("zh-TW", "微信 無法直接開啟此連結", "zh-Hant"),
        ("zh-HK,zh;q=0.8", "微信 無法直接開啟此連結", "zh-Hant"),
        ("yue-HK", "微信 無法直接開啟此連結", "zh-Hant"),
        ("en", "WeChat does not open this link directly", "en"),
    ):
        page = client.get(
            f"/s/{link['token']}", headers={"User-Agent": WECHAT, "Accept-Language": language}
        )
        assert page.status_code == 200 and text in page.data.decode(), language
        assert f'<html lang="{lang}"' in page.data.decode(), language


def test_the_qr_code_is_explained_as_the_app_can_scan_it(
    client: FlaskClient, link: dict[str, Any], admin: dict[str, str]
) -> None:
    """WeChat's long-press menu scans a code in an image; LINE's has no such item, so its
    readers are told to use the camera from another screen or a screenshot."""
    line = (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) Mobile/15E148 Safari Line/14.3.1"
    )
    for platform in ("wechat", "line"):
        blocked = client.put(
            f"/api/v1/campaigns/milk-tea/platforms/{platform}",
            json={"status": "blocked"},
            headers=admin,
        )
        assert blocked.status_code == 200, blocked.json
    for agent, text in (
        (WECHAT, "长按二维码并选择“识别图中二维码”"),
        (line, "在另一块屏幕（电脑或另一部手机）上打开本页"),
    ):
        page = client.get(
            f"/s/{link['token']}", headers={"User-Agent": agent, "Accept-Language": "zh-CN"}
        ).data.decode()
        assert 'id="qr"' in page and text in page, agent
    on_line = client.get(
        f"/s/{link['token']}", headers={"User-Agent": line, "Accept-Language": "en"}
    ).data.decode()
    assert "take a screenshot" in on_line and "Long-press" not in on_line


def test_on_a_computer_the_fallback_page_says_what_a_computer_can_do(
    client: FlaskClient, link: dict[str, Any]
) -> None:
    """WeChat for Windows opens links in a window of its own: no long-press, no ··· corner
    menu of the phone app; the person scans the screen with their phone."""
    desktop = (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/122.0.0.0 Safari/537.36 NetType/WIFI MicroMessenger/7.0.20.1781(0x6700143B) "
        "WindowsWechat(0x63090b19) XWEB/11275 Flue"
    )
    for language, text in (
        ("en", "Scan the code with your phone's camera."),
        ("zh-CN", "用手机相机扫描二维码。"),
        ("zh-TW", "用手機相機掃描 QR Code。"),
    ):
        page = client.get(
            f"/s/{link['token']}", headers={"User-Agent": desktop, "Accept-Language": language}
        ).data.decode()
        assert 'id="qr"' in page and text in page, language
    english = client.get(
        f"/s/{link['token']}", headers={"User-Agent": desktop, "Accept-Language": "en"}
    ).data.decode()
    assert "Long-press" not in english and "···" not in english
    assert "Open the app's menu and choose to open the page in your browser." in english
    on_phone = client.get(
        f"/s/{link['token']}", headers={"User-Agent": WECHAT, "Accept-Language": "en"}
    ).data.decode()
    assert "Long-press the code" in on_phone and "Tap ··· in the top right corner" in on_phone
