"""Campaign logos: checked when the campaign is saved, kept under their own key, read to render.

The API takes a logo as base64 in the campaign JSON; the campaign document keeps only its
SHA-256 (``Campaign.logo_sha256``), and the bytes live under ``CampaignKeys.logo``, so the
document the click path loads stays small.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
import warnings
from dataclasses import dataclass
from typing import Any

from PIL import Image, UnidentifiedImageError

from gateway.errors import ApiError
from gateway.store import keys
from gateway.store.scripts import script

MAX_BYTES = 256 * 1024
MIN_SIDE = 16
MAX_SIDE = 2048
# MPO is how Pillow names the multi-picture JPEGs many phone cameras write.
FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "MPO": "image/jpeg"}
DATA_URL = re.compile(r"^data:image/(?:png|jpeg|jpg);base64,", re.IGNORECASE)


@dataclass(frozen=True)
class Logo:
    data: bytes
    sha256: str
    mime: str


def logo_error(message: str) -> ApiError:
    return ApiError(400, "validation_failed", "invalid campaign", fields={"logo": message})


def check_logo(value: str) -> Logo:
    """Decode and verify a base64 logo (a ``data:image/...;base64,`` prefix is allowed).
    Raises a 400 naming ``logo``."""
    text = DATA_URL.sub("", value.strip(), count=1)
    try:
        data = base64.b64decode(re.sub(r"\s+", "", text), validate=True)
    except (binascii.Error, ValueError):
        raise logo_error("must be base64 (a PNG or JPEG image)") from None
    if not data:
        raise logo_error("is empty")
    if len(data) > MAX_BYTES:
        raise logo_error(f"is {len(data)} bytes; at most {MAX_BYTES} (256 KiB) decoded")
    mime = _verify_image(data)
    return Logo(data, hashlib.sha256(data).hexdigest(), mime)


def _verify_image(data: bytes) -> str:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                kind = image.format or ""
                width, height = image.size
                if kind not in FORMATS:
                    raise logo_error(f"must be a PNG or JPEG image, not {kind or 'unknown'}")
                # The header is read; check the size before decoding any pixels.
                if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
                    raise logo_error(
                        f"is {width}x{height} pixels; each side must be {MIN_SIDE} to {MAX_SIDE}"
                    )
                image.load()  # decodes every pixel: truncated or corrupt data fails here
    except ApiError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise logo_error("is not an image Pillow can read (send a PNG or JPEG)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise logo_error(f"is a damaged image: {exc}") from None
    return FORMATS[kind]


def open_logo(data: bytes) -> Image.Image:
    """The logo as RGBA pixels (alpha kept, so a transparent logo sits on the white plate)."""
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGBA")


def save_with_logo(
    client: Any, campaign_id: int, document: str, base_version: int, logo: Logo | None
) -> bool:
    """Save a campaign document and set (or, with ``None``, remove) its logo in one step, unless
    the document changed since ``base_version`` was read. True when saved."""
    ck = keys.campaign_keys(campaign_id)
    saved = script("save_logo")(
        client, [ck.config, ck.logo], [document, base_version, logo.data if logo else b""]
    )
    return bool(saved)


def load_logo(client: Any, campaign_id: int, sha256: str) -> bytes | None:
    """The stored logo bytes if they are the ones ``sha256`` names (None while an edit that
    replaced them is being read half before, half after)."""
    data: bytes | None = client.get(keys.campaign_keys(campaign_id).logo)
    if data is None or hashlib.sha256(data).hexdigest() != sha256:
        return None
    return data
