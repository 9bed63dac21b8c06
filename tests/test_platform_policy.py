"""Platform policy: block status per campaign, the fallback ladder, share material by platform."""

from __future__ import annotations

import random
import re
import time
from html import unescape
from typing import Any
from urllib.parse import urlsplit

from flask.testing import FlaskClient

from gateway.services import Services
from tests.conftest import BROWSER, BROWSER_EN, FIXTURES

WECHAT_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI "
    "Language/zh_CN"
)
DESKTOP_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)


def href(html: str, element_id: str | None = None, css_class: str | None = None) -> str:
    if css_class:
        match = re.search(rf'class="{css_class}"><a href="([^"]+)"', html)
    else:
        match = re.search(rf'id="{element_id}"[^>]*value="([^"]+)"', html)
    assert match, html
    return unescape(match.group(1))


def put_platform(client: FlaskClient, admin: dict[str, str], key: str, **body: Any) -> Any:
    return client.put(f"/api/v1/campaigns/milk-tea/platforms/{key}", json=body, headers=admin)


def test_block_status_is_kept_with_who_and_when(
    client: FlaskClient, admin: dict[str, str], campaign: dict[str, Any]
) -> None:
    response = put_platform(
        client, admin, "wechat", status="blocked", note="warning page since 20:00"
    )
    assert response.status_code == 200, response.json
    entry = response.json
    assert entry["status"] == "blocked" and entry["strategy"] == "qr_first"
    assert entry["set_by"] == "apikey:test-admin" and entry["set_at"]
    assert entry["note"] == "warning page since 20:00"
    listed = client.get("/api/v1/campaigns/milk-tea/platforms", headers=admin).json["platforms"]
    by_key = {p["platform"]: p for p in listed}
    assert by_key["wechat"]["status"] == "blocked"
    assert by_key["browser"]["status"] == "ok" and by_key["browser"]["strategy"] == "redirect"
    assert client.get("/api/v1/campaigns/milk-tea", headers=admin).json["version"] == 2
    assert put_platform(client, admin, "wechat", status="ok").json["status"] == "ok"


def test_platform_input_errors(
    client: FlaskClient, admin: dict[str, str], campaign: dict[str, Any]
) -> None:
    assert put_platform(client, admin, "myspace", status="blocked").status_code == 404
    for body, field in (
        ({"status": "maybe"}, "status"),
        ({}, "status"),
        ({"status": "ok", "strategy": "teleport"}, "strategy"),
        ({"status": "ok", "note": "x" * 501}, "note"),
        ({"status": "ok", "colour": 1}, "colour"),
    ):
        response = put_platform(client, admin, "wechat", **body)
        assert response.status_code == 400, body
        assert field in response.json["fields"]
    assert client.get("/api/v1/campaigns/milk-tea", headers=admin).json["platforms"] == {}


def test_system_browser_redirects_and_wechat_gets_the_fallback_page(
    client: FlaskClient, link: dict[str, Any], services: Services, admin: dict[str, str]
) -> None:
    safari = client.get(f"/s/{link['token']}", headers=BROWSER)
    assert safari.status_code == 302
    page = client.get(f"/s/{link['token']}", headers={**BROWSER_EN, "User-Agent": WECHAT_IOS})
    assert page.status_code == 200
    html = page.data.decode()
    assert page.headers["Cache-Control"] == "no-store"
    assert f'src="/s/{link["token"]}/qr.svg"' in html
    assert "Open in Browser" in html  # WeChat's own menu item, in the guide
    assert href(html, element_id="share-url") == link["url"]
    continue_url = href(html, css_class="continue")
    assert continue_url.startswith("https://shop.example.com/landing?src=share&rg_click=")
    # No automatic jump out of the app, no script but the copy button's.
    assert "http-equiv" not in html and "location" not in html.lower().replace("location=", "")
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/copy.js" defer>']
    services.recorder.flush()
    stats = client.get("/api/v1/campaigns/milk-tea/stats", headers=admin).json
    assert stats["fallback_views"] == {"wechat": 1}
    assert stats["platforms"]["wechat"] == 1 and stats["outcomes"]["fallback"] == 1


def test_fallback_page_speaks_chinese_by_default(client: FlaskClient, link: dict[str, Any]) -> None:
    page = client.get(
        f"/s/{link['token']}", headers={"User-Agent": WECHAT_IOS, "Accept-Language": "zh-CN"}
    )
    html = page.data.decode()
    assert '<html lang="zh-CN">' in html
    assert "复制链接" in html and "扫描二维码" in html
    english = client.get(
        f"/s/{link['token']}", headers={"User-Agent": WECHAT_IOS, "Accept-Language": "en"}
    )
    assert '<html lang="en">' in english.data.decode()


def test_blocked_platform_leads_with_the_qr_code(
    client: FlaskClient, link: dict[str, Any], admin: dict[str, str]
) -> None:
    put_platform(client, admin, "wechat", status="ok", strategy="guide")
    guide_first = client.get(
        f"/s/{link['token']}", headers={**BROWSER_EN, "User-Agent": WECHAT_IOS}
    ).data.decode()
    assert guide_first.index('id="guide"') < guide_first.index('id="qr"')
    put_platform(client, admin, "wechat", status="blocked")
    blocked = client.get(
        f"/s/{link['token']}", headers={**BROWSER_EN, "User-Agent": WECHAT_IOS}
    ).data.decode()
    assert blocked.index('id="qr"') < blocked.index('id="guide"')
    assert "does not open this link directly" in blocked


def test_desktop_may_get_the_qr_to_scan_with_a_phone(
    client: FlaskClient, link: dict[str, Any], admin: dict[str, str]
) -> None:
    desktop = {**BROWSER_EN, "User-Agent": DESKTOP_CHROME}
    assert client.get(f"/s/{link['token']}", headers=desktop).status_code == 302
    put_platform(client, admin, "desktop", status="ok", strategy="qr_first")
    page = client.get(f"/s/{link['token']}", headers=desktop)
    assert page.status_code == 200 and 'id="qr"' in page.data.decode()


def test_share_material_switches_to_the_poster_where_links_are_blocked(
    client: FlaskClient, admin: dict[str, str], campaign: dict[str, Any]
) -> None:
    def mint(**extra: Any) -> Any:
        return client.post(
            "/api/v1/campaigns/milk-tea/links", json={"referrer": "ann", **extra}, headers=admin
        )

    plain = mint().json
    assert plain["mode"] == "link" and plain["platform"] is None
    assert plain["share_text"] == f"Milk tea {plain['url']}"
    assert plain["poster"] == plain["url"] + "/poster.png"
    assert mint(platform="wechat").json["mode"] == "link"
    put_platform(client, admin, "wechat", status="blocked")
    blocked = mint(platform="wechat").json
    assert blocked["mode"] == "qr" and blocked["platform"] == "wechat"
    # The words to post beside the poster, without the link WeChat blocks.
    assert blocked["share_text"] == "Milk tea" and "/s/" not in blocked["share_text"]
    assert mint(platform="weibo").json["mode"] == "link"
    bad = mint(platform="myspace")
    assert bad.status_code == 400 and "platform" in bad.json["fields"]


def test_share_text_template(client: FlaskClient, admin: dict[str, str]) -> None:
    client.post(
        "/api/v1/campaigns",
        json={
            "slug": "tea",
            "name": "奶茶",
            "destination_url": "https://shop.example.com/",
            "share_text": "请你喝{name}：{url} 先到先得",
        },
        headers=admin,
    )
    minted = client.post(
        "/api/v1/campaigns/tea/links", json={"referrer": "ann"}, headers=admin
    ).json
    assert minted["share_text"] == f"请你喝奶茶：{minted['url']} 先到先得"


def test_fifty_user_agents_one_destination(client: FlaskClient, link: dict[str, Any]) -> None:
    lines = (FIXTURES / "one_destination_agents.txt").read_text().splitlines()
    agents = ["" if line == "<empty>" else line for line in lines if not line.startswith("#")]
    assert len(agents) >= 50
    hosts = set()
    paths = set()
    challenged: list[str] = []
    pauses = random.Random(5)
    for number, agent in enumerate(agents):
        # Fifty people, not one browser switching user agents fifty times a second (a flood),
        # arriving at irregular moments (clockwork is a signal too).
        client.delete_cookie("rg_vid")
        time.sleep(pauses.expovariate(300))
        response = client.get(
            f"/s/{link['token']}",
            headers={"User-Agent": agent, "Accept-Language": "zh-CN"},
            environ_base={"REMOTE_ADDR": f"198.51.{number}.7"},
        )
        if response.status_code == 302:
            target = response.headers["Location"]
        else:
            assert response.status_code == 200, agent
            html = response.data.decode()
            if 'class="continue"' in html:
                target = href(html, css_class="continue")
            elif 'name="c"' in html:  # challenged: a person taps through (below)
                challenged.append(re.search(r'name="c" value="([^"]+)"', html).group(1))  # type: ignore[union-attr]
                continue
            else:  # crawlers and link previews: same campaign, no per-visitor link
                assert 'property="og:title" content="Milk tea"' in html, agent
                continue
        parts = urlsplit(target)
        hosts.add(parts.netloc)
        paths.add(parts.path + "?" + parts.query.split("&rg_click=")[0])
    if challenged:
        time.sleep(0.9)
    for answer in challenged:
        passed = client.post(f"/s/{link['token']}/go", data={"c": answer})
        assert passed.status_code == 303
        parts = urlsplit(passed.headers["Location"])
        hosts.add(parts.netloc)
        paths.add(parts.path + "?" + parts.query.split("&rg_click=")[0])
    assert hosts == {"shop.example.com"}
    assert paths == {"/landing?src=share"}
