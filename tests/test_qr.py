"""GET /s/<token>/qr.png and qr.svg: real decoders read the scan URL back, caching, bounds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from gateway import qr
from gateway.services import Services
from gateway.store.embedded import EmbeddedRedis
from tests.conftest import BROWSER, bearer, make_app, services_of
from tests.scanning import (
    assert_scans_as,
    b64,
    image_of,
    logo_png,
    module_matrix,
    svg_to_image,
)

IMAGE_CACHE = "public, max-age=3600"


@pytest.fixture
def with_logo(client: FlaskClient, admin: dict[str, str], campaign: dict[str, Any]) -> str:
    response = client.patch(
        "/api/v1/campaigns/milk-tea", json={"logo": b64(logo_png())}, headers=admin
    )
    assert response.status_code == 200, response.json
    sha: str = response.json["logo_sha256"]  # type: ignore[index]
    return sha


def qr_url(link: dict[str, Any], kind: str = "png") -> str:
    return f"/s/{link['token']}/qr.{kind}"


def shape(url: str, logo: bool, size: int, margin: int) -> qr.Geometry:
    return qr.geometry(url, logo, qr.QrParams(size, margin))


@pytest.mark.parametrize("size", [128, 256, 512, 1024])
@pytest.mark.parametrize("margin", [4, 2])
def test_png_scans_as_the_scan_url(
    client: FlaskClient, link: dict[str, Any], size: int, margin: int
) -> None:
    response = client.get(qr_url(link), query_string={"size": size, "margin": margin})
    assert response.status_code == 200
    assert response.content_type == "image/png"
    image = image_of(response.data)
    expected = shape(link["scan_url"], False, size, margin)
    # At most `size` wide, a whole number of pixels per module, the quiet zone asked for.
    assert image.size == (expected.side, expected.side)
    assert image.width <= size < image.width + expected.modules + 2 * margin
    assert expected.scale >= qr.MIN_SCALE
    assert_scans_as(image, link["scan_url"], "M")
    symbol = qr.symbol(link["scan_url"], False)
    assert module_matrix(image, expected.modules, margin, expected.scale) == [
        [bool(bit) for bit in row] for row in symbol.matrix
    ]
    assert not symbol.is_micro


def test_defaults_are_512_pixels_and_a_four_module_quiet_zone(
    client: FlaskClient, link: dict[str, Any]
) -> None:
    image = image_of(client.get(qr_url(link)).data)
    expected = shape(link["scan_url"], False, 512, 4)
    assert image.size == (expected.side, expected.side)
    light = image.convert("L")
    quiet = 4 * expected.scale
    assert all(light.getpixel((x, y)) == 255 for x in range(quiet) for y in range(image.height))
    assert light.getpixel((quiet, quiet)) == 0  # the finder pattern starts right after it


@pytest.mark.parametrize("size", [128, 300, 512, 1024])
def test_png_with_logo_scans_at_level_h(
    client: FlaskClient, link: dict[str, Any], with_logo: str, size: int
) -> None:
    response = client.get(qr_url(link), query_string={"size": size})
    assert response.status_code == 200
    image = image_of(response.data)
    assert_scans_as(image, link["scan_url"], "H")
    expected = shape(link["scan_url"], True, size, 4)
    # The logo is there (red in the middle) and hides at most ~15% of the symbol's modules.
    centre = image.convert("RGB").getpixel((image.width // 2, image.height // 2))
    assert centre == (200, 16, 46)
    symbol = [[bool(b) for b in row] for row in qr.symbol(link["scan_url"], True).matrix]
    seen = module_matrix(image, expected.modules, 4, expected.scale)
    changed = sum(
        a != b
        for row_a, row_b in zip(seen, symbol, strict=True)
        for a, b in zip(row_a, row_b, strict=True)
    )
    _, plate = expected.logo_plate()
    assert (plate / expected.scale) ** 2 <= qr.LOGO_AREA * expected.modules**2
    assert 0 < changed <= qr.LOGO_AREA * expected.modules**2


def test_svg_matches_the_png_and_scans(client: FlaskClient, link: dict[str, Any]) -> None:
    svg = client.get(qr_url(link, "svg"), query_string={"size": 400})
    assert svg.status_code == 200
    assert svg.content_type == "image/svg+xml"
    assert svg.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in svg.headers["Content-Security-Policy"]
    assert b"<script" not in svg.data
    png = image_of(client.get(qr_url(link), query_string={"size": 400}).data)
    drawn = svg_to_image(svg.data)
    assert drawn.size == png.size
    expected = shape(link["scan_url"], False, 400, 4)
    assert module_matrix(drawn, expected.modules, 4, expected.scale) == module_matrix(
        png, expected.modules, 4, expected.scale
    )
    assert_scans_as(drawn, link["scan_url"], "M")


def test_svg_with_logo_scans_at_level_h(
    client: FlaskClient, link: dict[str, Any], with_logo: str
) -> None:
    svg = client.get(qr_url(link, "svg"), query_string={"size": 600}).data
    assert b"<image" in svg and b"data:image/png;base64," in svg
    drawn = svg_to_image(svg)
    assert_scans_as(drawn, link["scan_url"], "H")
    png = image_of(client.get(qr_url(link), query_string={"size": 600}).data)
    expected = shape(link["scan_url"], True, 600, 4)
    offset, plate = expected.logo_plate()
    outside = [
        (row, col)
        for row in range(expected.modules)
        for col in range(expected.modules)
        if not (
            offset <= (4 + col) * expected.scale < offset + plate
            and offset <= (4 + row) * expected.scale < offset + plate
        )
    ]
    svg_modules = module_matrix(drawn, expected.modules, 4, expected.scale)
    png_modules = module_matrix(png, expected.modules, 4, expected.scale)
    assert all(svg_modules[r][c] == png_modules[r][c] for r, c in outside)


def test_etag_304_and_an_hour_of_caching(
    client: FlaskClient, link: dict[str, Any], services: Services
) -> None:
    first = client.get(qr_url(link))
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) > 20
    assert first.headers["Cache-Control"] == IMAGE_CACHE
    assert services.media.cache_info()[0] == 1

    again = client.get(qr_url(link), headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""
    assert again.headers["ETag"] == etag
    assert again.headers["Cache-Control"] == IMAGE_CACHE
    weak = client.get(qr_url(link), headers={"If-None-Match": f'"other", W/{etag}'})
    assert weak.status_code == 304
    assert client.get(qr_url(link), headers={"If-None-Match": '"other"'}).status_code == 200

    # Served from the in-process cache: the same bytes, still one entry.
    assert client.get(qr_url(link)).data == first.data
    assert services.media.cache_info()[0] == 1
    bigger = client.get(qr_url(link), query_string={"size": 900})
    assert bigger.headers["ETag"] != etag
    assert client.get(qr_url(link, "svg")).headers["ETag"] not in (etag, bigger.headers["ETag"])
    assert services.media.cache_info()[0] == 3
    head = client.head(qr_url(link))
    assert head.status_code == 200 and head.headers["ETag"] == etag


def test_sizes_that_give_the_same_module_size_share_one_image(
    client: FlaskClient, link: dict[str, Any]
) -> None:
    expected = shape(link["scan_url"], False, 512, 4)
    exact = expected.side
    a = client.get(qr_url(link), query_string={"size": exact})
    b = client.get(qr_url(link), query_string={"size": exact + 1})
    assert a.headers["ETag"] == b.headers["ETag"] and a.data == b.data


def test_a_new_logo_changes_the_etag(
    client: FlaskClient, link: dict[str, Any], admin: dict[str, str]
) -> None:
    plain = client.get(qr_url(link)).headers["ETag"]
    client.patch("/api/v1/campaigns/milk-tea", json={"logo": b64(logo_png())}, headers=admin)
    logo_one = client.get(qr_url(link)).headers["ETag"]
    client.patch(
        "/api/v1/campaigns/milk-tea", json={"logo": b64(logo_png((100, 100)))}, headers=admin
    )
    logo_two = client.get(qr_url(link)).headers["ETag"]
    client.patch("/api/v1/campaigns/milk-tea", json={"logo": None}, headers=admin)
    assert len({plain, logo_one, logo_two}) == 3
    assert client.get(qr_url(link)).headers["ETag"] == plain


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"size": "abc"}, b"size must be a whole number"),
        ({"size": ""}, b"size must be a whole number"),
        ({"size": "1.5"}, b"size must be a whole number"),
        ({"size": "+300"}, b"size must be a whole number"),
        ({"size": "\u0663\u0660\u0660"}, b"size must be a whole number"),  # Arabic-Indic 300
        ({"size": "63"}, b"size must be from 64 to 1024"),
        ({"size": "1025"}, b"size must be from 64 to 1024"),
        ({"size": "99999999999"}, b"size must be a whole number"),
        ({"margin": "-1"}, b"margin must be a whole number"),
        ({"margin": "17"}, b"margin must be from 0 to 16"),
        ({"size": "64", "margin": "16"}, b"is too small for this code"),
    ],
)
def test_bad_parameters_are_400(
    client: FlaskClient, link: dict[str, Any], query: dict[str, str], message: bytes
) -> None:
    for kind in ("png", "svg"):
        response = client.get(qr_url(link, kind), query_string=query)
        assert response.status_code == 400
        assert response.content_type.startswith("text/plain")
        assert message in response.data, response.data
        assert response.headers["Cache-Control"] == "no-store"


def test_tampered_token_gets_the_click_paths_404_page(
    client: FlaskClient, link: dict[str, Any]
) -> None:
    token = link["token"]
    bad = token[:-1] + ("A" if token[-1] != "A" else "B")
    click = client.get(f"/s/{bad}", headers=BROWSER)
    for path in (f"/s/{bad}/qr.png", f"/s/{bad}/qr.svg", "/s/junk/qr.png"):
        response = client.get(path, query_string={"size": "abc"})
        assert response.status_code == 404
        assert response.data == click.data
        assert response.headers["Cache-Control"] == "no-store"
    assert client.get(f"/s/{token}/qr.gif").status_code == 404


def test_unknown_campaign_is_404(client: FlaskClient, services: Services) -> None:
    from gateway.links import ShareLink

    token = services.codec.encode(ShareLink(404, 1, 1_750_000_000))
    assert client.get(f"/s/{token}/qr.png").status_code == 404


def test_qr_requests_are_not_clicks_and_scans_are_counted_as_scans(
    client: FlaskClient, link: dict[str, Any], services: Services, admin: dict[str, str]
) -> None:
    assert client.get(qr_url(link)).status_code == 200
    assert client.get(qr_url(link, "svg")).status_code == 200
    scanned = link["scan_url"].removeprefix("https://go.example.test")
    assert client.get(scanned, headers=BROWSER).status_code == 302
    services.recorder.flush()
    stats = client.get("/api/v1/campaigns/milk-tea/stats", headers=admin).json
    assert stats["clicks"] == 1
    assert stats["scan_clicks"] == 1 and stats["link_clicks"] == 0


def test_store_outage_is_503_not_a_crash(tmp_path: Path, own_store: EmbeddedRedis) -> None:
    app = make_app(tmp_path / "data", own_store.url())
    try:
        client = app.test_client()
        key, _ = services_of(app).api_keys.create("t", "admin")
        client.post(
            "/api/v1/campaigns",
            json={"slug": "tea", "name": "Tea", "destination_url": "https://shop.example.com/"},
            headers=bearer(key),
        )
        minted = client.post(
            "/api/v1/campaigns/tea/links", json={"referrer": "ann"}, headers=bearer(key)
        ).json
        assert client.get(qr_url(minted)).status_code == 200
        own_store.stop(force=True)
        for path in (qr_url(minted), f"/s/{minted['token']}/poster.png", f"/c/{minted['code']}"):
            response = client.get(path)
            assert response.status_code == 503, path
            assert response.headers["Retry-After"]
    finally:
        services_of(app).close()


def test_a_revoked_or_ended_links_images_are_gone(
    client: FlaskClient, admin: dict[str, str], link: dict[str, Any], services: Services
) -> None:
    """A poster printed after its link was revoked, or its campaign ended, would lead nowhere:
    its images answer 410 with the page a click would show, and are not kept by caches."""
    services.campaigns.recent_seconds = 0  # no wait for the campaign's view (5 s) to go stale
    poster = f"/s/{link['token']}/poster.png"
    assert client.get(poster).status_code == 200
    paused = client.patch("/api/v1/campaigns/milk-tea", json={"action": "pause"}, headers=admin)
    assert paused.status_code == 200
    assert client.get(qr_url(link)).status_code == 200  # a pause ends: posters still printed
    client.patch("/api/v1/campaigns/milk-tea", json={"action": "resume"}, headers=admin)
    revoked = client.post("/api/v1/campaigns/milk-tea/referrers/alice/revoke", headers=admin)
    assert revoked.status_code == 200, revoked.json
    for url in (qr_url(link), qr_url(link, "svg"), poster):
        gone = client.get(url, headers={"Accept-Language": "en"})
        assert gone.status_code == 410, url
        assert gone.content_type.startswith("text/html")
        assert gone.headers["Cache-Control"] == "no-store" and "ETag" not in gone.headers
    # A conditional request from a cache that kept the image is told it is gone too.
    assert client.get(qr_url(link), headers={"If-None-Match": '"x"'}).status_code == 410
    fresh = client.post(
        "/api/v1/campaigns/milk-tea/links", json={"referrer": "alice"}, headers=admin
    ).json
    assert fresh is not None and client.get(qr_url(fresh)).status_code == 200
    ended = client.patch("/api/v1/campaigns/milk-tea", json={"action": "end"}, headers=admin)
    assert ended.status_code == 200
    assert client.get(qr_url(fresh)).status_code == 410
    assert client.get(f"/s/{fresh['token']}/poster.png").status_code == 410
