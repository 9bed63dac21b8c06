"""Campaign logos: validated at save time, stored under their own key, removable."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import pytest
from flask.testing import FlaskClient
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from gateway.services import Services
from gateway.store import keys
from tests.scanning import b64, logo_png

BASE = {
    "name": "Logo tea",
    "destination_url": "https://shop.example.com/",
}


def create(client: FlaskClient, admin: dict[str, str], **fields: Any) -> Any:
    return client.post(
        "/api/v1/campaigns", json={"slug": "logo-tea", **BASE, **fields}, headers=admin
    )


def encoded(image: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def padded_png(total: int) -> bytes:
    """A valid PNG of exactly ``total`` bytes (padded with an uncompressed text chunk)."""
    image = Image.new("RGB", (64, 64), "red")
    base = len(encoded(image, "PNG", pnginfo=_text("")))
    return encoded(image, "PNG", pnginfo=_text("x" * (total - base)))


def _text(value: str) -> PngInfo:
    info = PngInfo()
    info.add_text("pad", value)
    return info


def test_a_png_logo_is_stored_under_its_own_key(
    client: FlaskClient, admin: dict[str, str], services: Services
) -> None:
    data = logo_png()
    response = create(client, admin, logo=b64(data))
    assert response.status_code == 201, response.json
    body = response.json
    assert body["logo_sha256"] == hashlib.sha256(data).hexdigest()
    assert "logo" not in body
    ck = keys.campaign_keys(body["id"])
    assert ck.logo.startswith(f"rg:{{c{body['id']}}}:")  # the campaign's hash tag
    assert services.store.main.get(ck.logo) == data
    document = services.store.main.hget(ck.config, "json")
    assert b64(data)[:40].encode() not in document and b'"logo"' not in document


def test_jpeg_and_data_urls_are_accepted(
    client: FlaskClient, admin: dict[str, str], services: Services
) -> None:
    jpeg = logo_png(fmt="JPEG")
    response = create(client, admin, logo="data:image/jpeg;base64," + b64(jpeg))
    assert response.status_code == 201, response.json
    assert services.store.main.get(keys.campaign_keys(response.json["id"]).logo) == jpeg


@pytest.mark.parametrize(
    ("logo", "message"),
    [
        ("not base64 at all!", "must be base64"),
        (b64(b"just some text, not an image"), "is not an image"),
        (b64(encoded(Image.new("RGB", (64, 64), "red"), "GIF")), "must be a PNG or JPEG image"),
        (b64(encoded(Image.new("RGB", (64, 64), "red"), "BMP")), "must be a PNG or JPEG image"),
        (b64(encoded(Image.new("RGB", (64, 64), "red"), "WEBP")), "must be a PNG or JPEG image"),
        (b64(encoded(Image.new("RGB", (8, 8), "red"), "PNG")), "each side must be 16 to 2048"),
        (b64(encoded(Image.new("1", (4000, 20)), "PNG")), "each side must be 16 to 2048"),
        (b64(logo_png()[:200]), "damaged image"),
        ("", "is empty"),
    ],
)
def test_bad_logos_are_400_naming_logo(
    client: FlaskClient, admin: dict[str, str], logo: str, message: str
) -> None:
    response = create(client, admin, logo=logo)
    assert response.status_code == 400
    assert response.json["error"] == "validation_failed"
    assert message in response.json["fields"]["logo"], response.json
    assert client.get("/api/v1/campaigns/logo-tea", headers=admin).status_code == 404


def test_a_logo_over_256_kib_is_400(client: FlaskClient, admin: dict[str, str]) -> None:
    just_over = padded_png(256 * 1024 + 1)
    assert len(just_over) == 262145
    response = create(client, admin, logo=b64(just_over))
    assert response.status_code == 400
    assert "is 262145 bytes; at most 262144 (256 KiB) decoded" in response.json["fields"]["logo"]
    # Far over: refused by the field's length limit before it is decoded.
    response = create(client, admin, logo=b64(padded_png(400_000)))
    assert response.status_code == 400
    assert "at most 350000 characters" in response.json["fields"]["logo"]
    at_limit = create(client, admin, logo=b64(padded_png(256 * 1024)))
    assert at_limit.status_code == 201, at_limit.json


def test_patch_sets_replaces_and_removes_the_logo(
    client: FlaskClient, admin: dict[str, str], campaign: dict[str, Any], services: Services
) -> None:
    ck = keys.campaign_keys(campaign["id"])
    assert campaign["logo_sha256"] is None
    first, second = logo_png(), logo_png((64, 64))
    response = client.patch("/api/v1/campaigns/milk-tea", json={"logo": b64(first)}, headers=admin)
    assert response.json["logo_sha256"] == hashlib.sha256(first).hexdigest()
    assert services.store.main.get(ck.logo) == first

    response = client.patch(
        "/api/v1/campaigns/milk-tea", json={"logo": b64(second), "name": "Renamed"}, headers=admin
    )
    assert response.json["logo_sha256"] == hashlib.sha256(second).hexdigest()
    assert services.store.main.get(ck.logo) == second

    # An edit that does not mention the logo keeps it.
    response = client.patch("/api/v1/campaigns/milk-tea", json={"action": "pause"}, headers=admin)
    assert response.json["logo_sha256"] == hashlib.sha256(second).hexdigest()
    assert services.store.main.get(ck.logo) == second

    response = client.patch("/api/v1/campaigns/milk-tea", json={"logo": None}, headers=admin)
    assert response.status_code == 200
    assert response.json["logo_sha256"] is None
    assert services.store.main.exists(ck.logo) == 0
    stored = client.get("/api/v1/campaigns/milk-tea", headers=admin).json
    assert stored["logo_sha256"] is None and stored["name"] == "Renamed"


def test_a_bad_logo_in_a_patch_changes_nothing(
    client: FlaskClient, admin: dict[str, str], campaign: dict[str, Any], services: Services
) -> None:
    data = logo_png()
    client.patch("/api/v1/campaigns/milk-tea", json={"logo": b64(data)}, headers=admin)
    response = client.patch(
        "/api/v1/campaigns/milk-tea",
        json={"logo": b64(b"GIF89a nonsense"), "name": "Changed"},
        headers=admin,
    )
    assert response.status_code == 400 and "logo" in response.json["fields"]
    stored = client.get("/api/v1/campaigns/milk-tea", headers=admin).json
    assert stored["name"] == "Milk tea"
    assert stored["logo_sha256"] == hashlib.sha256(data).hexdigest()
    assert services.store.main.get(keys.campaign_keys(campaign["id"]).logo) == data


def test_a_conflicting_edit_does_not_replace_the_logo(
    client: FlaskClient, admin: dict[str, str], campaign: dict[str, Any], services: Services
) -> None:
    from gateway import logos

    data = logo_png()
    stale_version = services.campaigns.require("milk-tea").version
    client.patch("/api/v1/campaigns/milk-tea", json={"name": "Moved on"}, headers=admin)
    saved = logos.save_with_logo(
        services.store.main, campaign["id"], "{}", stale_version, logos.check_logo(b64(data))
    )
    assert saved is False
    assert services.store.main.exists(keys.campaign_keys(campaign["id"]).logo) == 0
    assert services.campaigns.require("milk-tea").name == "Moved on"
