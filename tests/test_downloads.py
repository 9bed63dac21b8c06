"""Downloaded files' names: a link's QR codes and poster, saved from the console's mint page
under ``<slug>-<sharer>-<file>``, where a sharer's id may be an email address or carry ":"."""

from __future__ import annotations

import re
from html import unescape

import pytest
from flask import Flask
from werkzeug.http import parse_options_header

from gateway.downloads import MAX_BYTES, content_disposition, link_file, safe_filename
from gateway.services import Services
from tests.console_helpers import add_staff, as_role, token

#: Never in a saved file's name: path separators, what Windows refuses, the header's syntax.
FORBIDDEN = re.compile(r'[/\\:*?"<>|;,%\x00-\x1f\x7f]')


@pytest.mark.parametrize(
    ("stem", "expected"),
    [
        ("spring-tea-alice", "spring-tea-alice-poster.png"),
        ("spring-tea-alice@example.com", "spring-tea-alice@example.com-poster.png"),
        ("spring-tea-crm:1042", "spring-tea-crm_1042-poster.png"),
        ('a/b\\c"d;e,f%g\r\nh', "a_b_c_d_e_f_g__h-poster.png"),
        ("..hidden", "hidden-poster.png"),
        ("", "download-poster.png"),
        ("春节-alice", "春节-alice-poster.png"),
    ],
)
def test_a_file_name_is_safe_on_every_system(stem: str, expected: str) -> None:
    name = safe_filename(stem, "-poster.png")
    assert name == expected
    assert not FORBIDDEN.search(name)


def test_a_links_file_is_named_for_its_campaign_and_sharer() -> None:
    assert link_file("spring-tea", "crm:1042", "qr.png") == "spring-tea-crm_1042-qr.png"


def test_a_long_name_keeps_its_suffix_and_fits_a_file_system() -> None:
    for stem in ("x" * 300, "春" * 300):
        name = safe_filename(stem, "-qr.svg")
        assert name.endswith("-qr.svg") and len(name.encode()) <= MAX_BYTES <= 255


def test_the_header_says_attachment_and_gives_the_name_whole() -> None:
    """RFC 6266: a quoted ASCII ``filename``; a name with other letters in ``filename*``
    (RFC 5987, UTF-8), which clients that know it prefer."""
    plain = content_disposition("spring-tea-alice@example.com-qr.png")
    assert plain == 'attachment; filename="spring-tea-alice@example.com-qr.png"'
    chinese = content_disposition("春节-alice-poster.png")
    assert chinese == (
        'attachment; filename="__-alice-poster.png"; '
        "filename*=UTF-8''%E6%98%A5%E8%8A%82-alice-poster.png"
    )
    kind, params = parse_options_header(chinese)
    assert kind == "attachment" and params == {"filename": "春节-alice-poster.png"}
    assert chinese.isascii() and "\r" not in chinese and "\n" not in chinese


@pytest.mark.parametrize("referrer", ["alice@example.com", "crm:1042", "a.b+c@x.example"])
def test_the_mint_pages_downloads_are_named_for_the_sharer_and_safe(
    app: Flask, services: Services, referrer: str
) -> None:
    add_staff(services)
    client = as_role(app, "marketing")
    services.campaigns.create(
        {"slug": "spring-tea", "name": "Tea", "destination_url": "https://shop.example.com/"},
        "test",
    )
    minted = client.post(
        "/console/campaigns/spring-tea/links",
        data={"referrer": referrer, "csrf_token": token(client)},
    )
    assert minted.status_code == 200, minted.text
    links = {
        kind: (unescape(href), name)
        for kind, href, name in re.findall(
            r'id="download-(\w+)" href="([^"]+)" download="([^"]+)"', minted.text
        )
    }
    assert set(links) == {"png", "svg", "poster"}
    stem = f"spring-tea-{referrer.replace(':', '_')}"
    for kind, file, content_type in (
        ("png", "qr.png", "image/png"),
        ("svg", "qr.svg", "image/svg+xml"),
        ("poster", "poster.png", "image/png"),
    ):
        href, name = links[kind]
        assert name == f"{stem}-{file}" and not FORBIDDEN.search(name)
        answer = client.get(href)
        assert answer.status_code == 200 and answer.content_type == content_type
        assert answer.headers["Content-Disposition"] == f'attachment; filename="{name}"'
        assert parse_options_header(answer.headers["Content-Disposition"])[1] == {"filename": name}
        assert "public" not in answer.headers["Cache-Control"]  # it names the sharer
    # The public images never name the sharer: anyone holding their link could read it.
    public = client.get(links["poster"][0].replace("/console/campaigns/spring-tea/links", "/s"))
    assert public.status_code == 200 and "Content-Disposition" not in public.headers
    assert referrer not in str(public.headers)


def test_a_download_of_another_campaign_or_role_or_a_gone_link_is_refused(
    app: Flask, services: Services
) -> None:
    add_staff(services)
    for slug in ("spring-tea", "coffee"):
        services.campaigns.create(
            {"slug": slug, "name": slug, "destination_url": "https://shop.example.com/"},
            "test",
        )
    link = services.links.mint(services.campaigns.require("spring-tea"), "alice@example.com")
    marketing = as_role(app, "marketing")
    path = f"/console/campaigns/spring-tea/links/{link.token}/poster.png"
    assert marketing.get(path).status_code == 200
    assert marketing.get(path.replace("spring-tea", "coffee")).status_code == 404
    assert marketing.get(path.replace(link.token, "nope")).status_code == 404
    assert marketing.get(path.replace("poster.png", "poster.pdf")).status_code == 404
    bad_size = marketing.get(path.replace("poster.png", "qr.png") + "?size=abc")
    assert bad_size.status_code == 400 and "Content-Disposition" not in bad_size.headers
    assert as_role(app, "risk").get(path).status_code == 403
    services.campaigns.recent_seconds = 0  # no wait for the campaign's view (5 s) to go stale
    services.campaigns.update("spring-tea", {"action": "end"}, "test")
    gone = marketing.get(path)  # as its public image is: a poster leading nowhere is not given
    assert gone.status_code == 410 and "Content-Disposition" not in gone.headers
