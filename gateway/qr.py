"""QR codes of share links, as PNG and SVG, always a whole number of pixels per module.

Symbols come from segno (``make_qr`` never makes Micro QR, which many phone scanners cannot
read), with error correction M, or H when the campaign logo covers the middle; ``boost_error`` is
off so the level is exactly the one chosen. A logo sits on a white plate of whole modules that
covers at most :data:`LOGO_AREA` of the symbol, well within what level H restores (about 30%).
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import segno
from PIL import Image, ImageOps

ERROR_PLAIN = "M"
ERROR_WITH_LOGO = "H"
QUIET_ZONE = 4  # modules; what ISO/IEC 18004 asks for
MAX_MARGIN = 16
DEFAULT_SIZE = 512
MIN_SIZE = 64
# Large enough for screens and for print at 8 cm and 300 dpi (posters and the SVG cover bigger
# prints); it also bounds what one uncached request can cost. Beyond ~30 pixels per module some
# decoders (OpenCV's) start to misread perfectly clean symbols.
MAX_SIZE = 1024
MIN_SCALE = 2  # pixels per module; one is too fragile for cameras
LOGO_AREA = 0.15
SVG_LOGO_MAX = 512  # pixels of the logo embedded in an SVG (it scales with the drawing)


class BadParams(ValueError):
    """A query parameter is not a number or out of bounds; the message is shown to the client."""


@dataclass(frozen=True)
class QrParams:
    size: int = DEFAULT_SIZE
    margin: int = QUIET_ZONE


def parse_params(args: Mapping[str, str]) -> QrParams:
    """``size`` (pixels, the image is at most this wide) and ``margin`` (quiet zone, modules)."""
    return QrParams(
        size=_whole(args, "size", DEFAULT_SIZE, MIN_SIZE, MAX_SIZE),
        margin=_whole(args, "margin", QUIET_ZONE, 0, MAX_MARGIN),
    )


def _whole(args: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = args.get(name)
    if raw is None:
        return default
    # isdecimal() alone admits non-ASCII digits; int() admits "+5", " 5" and "5_0".
    if not (raw.isascii() and raw.isdecimal() and len(raw) <= 6):
        raise BadParams(f"{name} must be a whole number from {low} to {high}, got {raw[:20]!r}")
    value = int(raw)
    if not low <= value <= high:
        raise BadParams(f"{name} must be from {low} to {high}, got {value}")
    return value


@lru_cache(maxsize=1024)
def symbol(url: str, with_logo: bool) -> Any:
    """The QR symbol of ``url`` (cached: encoding costs several milliseconds in pure Python)."""
    error = ERROR_WITH_LOGO if with_logo else ERROR_PLAIN
    return segno.make_qr(url, error=error, boost_error=False)


@dataclass(frozen=True)
class Geometry:
    """Where things are, in pixels, for a symbol of ``modules`` per side at ``scale``."""

    modules: int
    margin: int
    scale: int

    @property
    def side(self) -> int:
        return (self.modules + 2 * self.margin) * self.scale

    def logo_plate(self) -> tuple[int, int]:
        """Offset and side of the white square under a logo, on whole modules, centred."""
        plate = math.isqrt(int(LOGO_AREA * self.modules * self.modules))
        if (self.modules - plate) % 2:  # same parity as the symbol, so it centres on modules
            plate -= 1
        return (self.margin + (self.modules - plate) // 2) * self.scale, plate * self.scale


def geometry(url: str, with_logo: bool, params: QrParams) -> Geometry:
    """The largest whole-pixel module size that keeps the image within ``params.size``."""
    modules = symbol(url, with_logo).symbol_size(scale=1, border=0)[0]
    total = modules + 2 * params.margin
    scale = params.size // total
    if scale < MIN_SCALE:
        raise BadParams(
            f"size {params.size} is too small for this code: {total} modules with the margin "
            f"need size >= {total * MIN_SCALE}"
        )
    return Geometry(modules, params.margin, scale)


def render_image(url: str, scale: int, margin: int, logo: Image.Image | None) -> Image.Image:
    """The code as pixels (for the poster, which pastes it as is)."""
    with Image.open(io.BytesIO(_plain_png(url, logo is not None, scale, margin))) as plain:
        image = plain.convert("RGB")
    if logo is not None:
        _place_logo(image, Geometry(image.width // scale - 2 * margin, margin, scale), logo)
    return image


def render_png(url: str, scale: int, margin: int, logo: Image.Image | None) -> bytes:
    if logo is None:
        return _plain_png(url, False, scale, margin)
    out = io.BytesIO()
    render_image(url, scale, margin, logo).save(out, format="PNG", optimize=True)
    return out.getvalue()


def render_svg(url: str, scale: int, margin: int, logo: Image.Image | None) -> bytes:
    qr = symbol(url, logo is not None)
    out = io.BytesIO()
    qr.save(out, kind="svg", scale=scale, border=margin, dark="#000", light="#fff", xmldecl=False)
    svg = out.getvalue()
    if logo is None:
        return svg
    box = Geometry(qr.symbol_size(scale=1, border=0)[0], margin, scale)
    offset, plate = box.logo_plate()
    inner = plate - 2 * scale
    embedded = logo.copy()
    embedded.thumbnail((SVG_LOGO_MAX, SVG_LOGO_MAX), Image.Resampling.LANCZOS)  # only shrinks
    data = io.BytesIO()
    embedded.save(data, format="PNG", optimize=True)
    href = "data:image/png;base64," + base64.b64encode(data.getvalue()).decode("ascii")
    overlay = (
        f'<rect x="{offset}" y="{offset}" width="{plate}" height="{plate}" fill="#fff"/>'
        f'<image x="{offset + scale}" y="{offset + scale}" width="{inner}" height="{inner}" '
        f'preserveAspectRatio="xMidYMid meet" href="{href}"/>'
    )
    head, tail = svg.rsplit(b"</svg>", 1)
    return head + overlay.encode("ascii") + b"</svg>" + tail


def _plain_png(url: str, with_logo: bool, scale: int, margin: int) -> bytes:
    out = io.BytesIO()
    symbol(url, with_logo).save(out, kind="png", scale=scale, border=margin)
    return out.getvalue()


def _place_logo(image: Image.Image, box: Geometry, logo: Image.Image) -> None:
    offset, plate = box.logo_plate()
    image.paste((255, 255, 255), (offset, offset, offset + plate, offset + plate))
    inner = plate - 2 * box.scale  # one module of white around the logo
    fitted = ImageOps.contain(logo, (inner, inner), Image.Resampling.LANCZOS)
    x = offset + (plate - fitted.width) // 2
    y = offset + (plate - fitted.height) // 2
    image.paste(fitted, (x, y), fitted if fitted.mode == "RGBA" else None)
