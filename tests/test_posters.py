"""GET /s/<token>/poster.png and poster fonts: print size, the QR code pasted as is and readable,
the invite code and its URL, fonts checked when the campaign is saved."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image, ImageChops

from gateway import posters, qr
from gateway.fonts import CJK_PACKAGES, FontCatalog
from gateway.logos import open_logo
from gateway.services import Services
from gateway.settings import SettingsError
from tests.conftest import BROWSER, bearer, make_app, services_of
from tests.scanning import assert_scans_as, b64, image_of, logo_png

WQY = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
POSTER = {
    "title": "春节奶茶，第二杯半价！",
    "text": "邀请好友扫码下单，你和好友各得一杯免费奶茶。活动时间：2月1日至2月20日。",
}


def test_the_machine_has_the_fonts_the_suite_needs() -> None:
    # No silent skips: CI installs fonts-wqy-microhei (.ci/run); DejaVu comes with Debian.
    assert WQY.is_file(), f"install the Debian package {CJK_PACKAGES}"
    assert DEJAVU.is_file(), "install the Debian package fonts-dejavu-core"


def set_poster(client: FlaskClient, admin: dict[str, str], **fields: Any) -> Any:
    return client.patch("/api/v1/campaigns/milk-tea", json=fields, headers=admin)


def expected_poster(
    services: Services, link: dict[str, Any], title: str, text: str, font: str = "auto"
) -> posters.PosterContent:
    """What the route should draw, built independently of gateway.media."""
    campaign = services.campaigns.require("milk-tea")
    face = FontCatalog().resolve(font, title + text + posters.FIXED_CHARS)
    logo = None
    if campaign.logo_sha256:
        from gateway.store import keys

        logo = open_logo(services.store.main.get(keys.campaign_keys(campaign.id).logo))
    return posters.PosterContent(
        title=title,
        text=text,
        code=link["code"],
        code_url=f"go.example.test/c/{link['code']}",
        scan_url=link["scan_url"],
        face=face,
        logo=logo,
    )


def assert_qr_pasted_as_is(poster: Image.Image, content: posters.PosterContent) -> None:
    _, layout = posters.render_poster(content)
    x, y = layout.qr_origin
    side = layout.qr_side
    pasted = poster.convert("RGB").crop((x, y, x + side, y + side))
    rendered = qr.render_image(content.scan_url, layout.qr_scale, qr.QUIET_ZONE, content.logo)
    assert rendered.size == (side, side)
    assert ImageChops.difference(pasted, rendered).getbbox() is None  # identical, pixel for pixel


@pytest.mark.parametrize("logo", [False, True])
def test_poster_is_a6_at_300_dpi_and_its_qr_code_scans(
    client: FlaskClient,
    admin: dict[str, str],
    link: dict[str, Any],
    services: Services,
    logo: bool,
) -> None:
    fields: dict[str, Any] = {"poster": POSTER}
    if logo:
        fields["logo"] = b64(logo_png())
    assert set_poster(client, admin, **fields).status_code == 200
    response = client.get(f"/s/{link['token']}/poster.png")
    assert response.status_code == 200
    assert response.content_type == "image/png"
    image = image_of(response.data)
    assert image.size == (posters.WIDTH, posters.HEIGHT) == (1240, 1748)
    assert tuple(round(v) for v in image.info["dpi"]) == (300, 300)
    assert_scans_as(image, link["scan_url"], "H" if logo else "M")

    content = expected_poster(services, link, POSTER["title"], POSTER["text"])
    assert response.data == posters.render_poster(content)[0]
    assert_qr_pasted_as_is(image, content)


def test_poster_layout_prints_title_text_code_and_its_url(
    client: FlaskClient, admin: dict[str, str], link: dict[str, Any], services: Services
) -> None:
    set_poster(client, admin, poster=POSTER, logo=b64(logo_png()))
    content = expected_poster(services, link, POSTER["title"], POSTER["text"])
    _, layout = posters.render_poster(content)
    texts = [line.text for line in layout.lines]
    assert texts[0] == POSTER["title"]
    assert "".join(texts[1:-3]) == POSTER["text"]  # wrapped, nothing lost
    assert texts[-3:] == [
        "扫码参与",
        f"邀请码 {link['code']}",
        f"扫不了？用浏览器打开 go.example.test/c/{link['code']}",
    ]
    assert layout.language == "zh"
    x, y = layout.qr_origin
    qr_box = (x, y, x + layout.qr_side, y + layout.qr_side)
    boxes = [line.box for line in layout.lines]
    assert layout.logo_box is not None
    for box in [*boxes, qr_box, layout.logo_box]:
        assert 0 <= box[0] < box[2] <= posters.WIDTH and 0 <= box[1] < box[3] <= posters.HEIGHT
    for i, a in enumerate([*boxes, qr_box, layout.logo_box]):
        for b in [*boxes, qr_box, layout.logo_box][i + 1 :]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)


def test_without_a_poster_the_campaign_name_is_the_title(
    client: FlaskClient, link: dict[str, Any], services: Services
) -> None:
    response = client.get(f"/s/{link['token']}/poster.png")
    assert response.status_code == 200
    content = expected_poster(services, link, "Milk tea", "")
    assert response.data == posters.render_poster(content)[0]
    _, layout = posters.render_poster(content)
    assert layout.lines[0].text == "Milk tea"
    assert_scans_as(image_of(response.data), link["scan_url"], "M")


def test_a_name_with_an_emoji_still_gets_its_poster_without_the_emoji(
    client: FlaskClient, admin: dict[str, str], link: dict[str, Any], services: Services
) -> None:
    """The name stands in for a poster never configured, best effort: an emoji no installed
    font can draw is left out, not a 500 (found exploring the demo)."""
    renamed = client.patch("/api/v1/campaigns/milk-tea", json={"name": "春节 🧋"}, headers=admin)
    assert renamed.status_code == 200
    response = client.get(f"/s/{link['token']}/poster.png")
    assert response.status_code == 200, response.data
    _, layout = posters.render_poster(expected_poster(services, link, "春节", ""))
    assert layout.lines[0].text == "春节"
    assert_scans_as(image_of(response.data), link["scan_url"], "M")


def test_an_emoji_in_a_configured_poster_is_named_at_save_time(
    client: FlaskClient, admin: dict[str, str], campaign: dict[str, Any]
) -> None:
    response = set_poster(client, admin, poster={"title": "春节 🧧 快乐"})
    assert response.status_code == 400
    message = response.json["fields"]["poster.font"]
    # What cannot be drawn, and no advice to install the CJK font that is installed.
    assert message == (
        "no installed font can draw '🧧'; leave them out or install a font that has them"
    )


def test_long_text_wraps_and_shrinks_to_fit() -> None:
    face = FontCatalog().resolve("auto", "字")
    content = posters.PosterContent(
        title="春" * 40,
        text="邀请好友扫码下单，" * 22,
        code="0000-33",
        code_url="go.example.test/c/0000-33",
        scan_url="https://go.example.test/s/x",
        face=face,
        logo=open_logo(logo_png()),
    )
    png, layout = posters.render_poster(content)
    title_lines = [line for line in layout.lines if line.text.startswith("春")]
    assert 1 <= len(title_lines) <= posters.TITLE_LINES
    assert all(line.box[0] >= posters.PAD // 2 for line in layout.lines)
    assert all(line.box[2] <= posters.WIDTH - posters.PAD // 2 for line in layout.lines)
    assert max(line.box[3] for line in layout.lines[:-3]) < layout.qr_origin[1]
    assert_scans_as(image_of(png), "https://go.example.test/s/x", "H")


def test_wrapping_keeps_closing_punctuation_off_the_start_of_a_line() -> None:
    face = FontCatalog().resolve("auto", "字")
    from PIL import ImageFont

    font = ImageFont.truetype(face.path, 100, index=face.index)
    for text in ("一二三四五六七八九十，好", "一二三四五六七八九十。", "Milk tea, twice the fun!"):
        for width in (300, 500, 1000):
            lines = posters.wrap(text, font, width)
            assert "".join(lines).replace(" ", "") == text.replace(" ", "")
            assert not any(line[0] in posters.NO_LINE_START for line in lines)


def test_poster_has_etag_304_and_long_caching(
    client: FlaskClient, link: dict[str, Any], admin: dict[str, str]
) -> None:
    path = f"/s/{link['token']}/poster.png"
    first = client.get(path)
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "public, max-age=3600"
    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    set_poster(client, admin, poster={"title": "新标题"})
    changed = client.get(path, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_poster_of_a_tampered_token_is_the_404_page(
    client: FlaskClient, link: dict[str, Any]
) -> None:
    token = link["token"]
    bad = token[:-1] + ("A" if token[-1] != "A" else "B")
    response = client.get(f"/s/{bad}/poster.png")
    assert response.status_code == 404
    assert response.data == client.get(f"/s/{bad}", headers=BROWSER).data


# -- fonts, checked when the campaign is saved -----------------------------------------------


@pytest.mark.parametrize(
    ("poster", "message"),
    [
        ({"title": "Tea", "font": "Comic Sans MS"}, "font 'Comic Sans MS' is not installed"),
        ({"title": "奶茶", "font": "DejaVu Sans"}, "font 'DejaVu Sans' cannot draw '奶茶'"),
        (
            {"title": "Tea", "text": "\U00013000\U00013001", "font": "auto"},
            "no installed font can draw",
        ),
    ],
)
def test_unusable_fonts_are_400_naming_poster_font(
    client: FlaskClient, admin: dict[str, str], campaign: dict[str, Any], poster: Any, message: str
) -> None:
    for response in (
        client.patch("/api/v1/campaigns/milk-tea", json={"poster": poster}, headers=admin),
        client.post(
            "/api/v1/campaigns",
            json={
                "slug": "other",
                "name": "Other",
                "destination_url": "https://shop.example.com/",
                "poster": poster,
            },
            headers=admin,
        ),
    ):
        assert response.status_code == 400
        assert message in response.json["fields"]["poster.font"], response.json
    stored = client.get("/api/v1/campaigns/milk-tea", headers=admin).json
    assert stored["poster"] is None


@pytest.mark.parametrize(
    "poster",
    [
        {"title": "奶茶", "font": "WenQuanYi Micro Hei"},
        {"title": "奶茶", "font": "文泉驿微米黑"},  # the family's Chinese name works too
        {"title": "Milk tea", "font": "dejavu sans"},
        {"title": "奶茶", "text": "第二杯半价"},  # font defaults to auto
    ],
)
def test_installed_fonts_are_accepted(
    client: FlaskClient, admin: dict[str, str], link: dict[str, Any], poster: Any
) -> None:
    response = client.patch("/api/v1/campaigns/milk-tea", json={"poster": poster}, headers=admin)
    assert response.status_code == 200, response.json
    image = image_of(client.get(f"/s/{link['token']}/poster.png").data)
    assert_scans_as(image, link["scan_url"], "M")


@pytest.fixture
def latin_only_app(tmp_path: Path, store_url: str) -> Iterator[Flask]:
    """A server whose only font is DejaVu Sans: no CJK font installed."""
    fonts = tmp_path / "fonts"
    fonts.mkdir()
    (fonts / DEJAVU.name).symlink_to(DEJAVU)
    app = make_app(tmp_path / "data", store_url, REFGATE_FONT_DIRS=str(fonts))
    yield app
    services_of(app).close()


def test_without_a_cjk_font_chinese_posters_are_refused_with_the_package_to_install(
    latin_only_app: Flask,
) -> None:
    client = latin_only_app.test_client()
    key, _ = services_of(latin_only_app).api_keys.create("t", "admin")
    base = {"destination_url": "https://shop.example.com/"}
    refused = client.post(
        "/api/v1/campaigns",
        json={"slug": "cn", "name": "Tea", "poster": {"title": "奶茶"}, **base},
        headers=bearer(key),
    )
    assert refused.status_code == 400
    message = refused.json["fields"]["poster.font"]
    assert "no CJK font is installed" in message and "fonts-wqy-microhei" in message
    # Without a poster the name stands in, best effort: a campaign is never refused for its
    # name, and its poster is a clear error saying what to install, not an image of boxes.
    named = client.post(
        "/api/v1/campaigns", json={"slug": "cn", "name": "春节奶茶", **base}, headers=bearer(key)
    )
    assert named.status_code == 201, named.json
    token = client.post(
        "/api/v1/campaigns/cn/links", json={"referrer": "ann"}, headers=bearer(key)
    ).json["token"]
    poster = client.get(f"/s/{token}/poster.png")
    assert poster.status_code == 500 and poster.content_type.startswith("text/plain")
    assert b"no CJK font is installed" in poster.data and b"fonts-wqy-microhei" in poster.data
    assert client.get(f"/s/{token}/qr.png").status_code == 200

    # A Latin poster works, with English captions.
    made = client.post(
        "/api/v1/campaigns",
        json={"slug": "en", "name": "Tea", "poster": {"title": "Milk tea"}, **base},
        headers=bearer(key),
    )
    assert made.status_code == 201, made.json
    minted = client.post(
        "/api/v1/campaigns/en/links", json={"referrer": "ann"}, headers=bearer(key)
    ).json
    image = image_of(client.get(f"/s/{minted['token']}/poster.png").data)
    assert_scans_as(image, minted["scan_url"], "M")
    face = FontCatalog([DEJAVU.parent]).find("DejaVu Sans")
    assert face is not None
    content = posters.PosterContent(
        "Milk tea",
        "",
        minted["code"],
        f"go.example.test/c/{minted['code']}",
        minted["scan_url"],
        face,
    )
    _, layout = posters.render_poster(content)
    assert layout.language == "en"
    assert [line.text for line in layout.lines][-3:] == [
        "Scan to join",
        f"Invite code {minted['code']}",
        f"Can't scan? Open go.example.test/c/{minted['code']}",
    ]


def test_a_font_removed_after_saving_gives_a_clear_500_not_a_broken_image(
    client: FlaskClient,
    admin: dict[str, str],
    link: dict[str, Any],
    tmp_path: Path,
    store_url: str,
) -> None:
    set_poster(client, admin, poster={"title": "奶茶", "font": "WenQuanYi Micro Hei"})
    empty = tmp_path / "no-fonts"
    empty.mkdir()
    other = make_app(tmp_path / "other", store_url, REFGATE_FONT_DIRS=str(empty))
    try:
        response = other.test_client().get(f"/s/{link['token']}/poster.png")
    finally:
        services_of(other).close()
    assert response.status_code == 500
    assert response.content_type.startswith("text/plain")
    assert b"'WenQuanYi Micro Hei' is not installed" in response.data


def test_font_dirs_must_exist(tmp_path: Path, store_url: str) -> None:
    with pytest.raises(SettingsError, match="REFGATE_FONT_DIRS"):
        make_app(tmp_path / "data", store_url, REFGATE_FONT_DIRS=str(tmp_path / "missing"))
