"""Share posters: the campaign's title and text, the sharer's QR code and invite code, ready to
print.

The canvas is A6 portrait at 300 dpi (105 x 148 mm, 1240 x 1748 pixels): the size of a flyer or
a table card, sharp when printed, and small enough (a PNG of 100-300 KB) to send in a chat. The
QR code is rendered at a whole number of pixels per module and pasted as is, never resized, so
every module edge stays sharp. Text is Chinese by default; captions are Chinese whenever the
chosen font can draw them, English otherwise.
"""

from __future__ import annotations

import io
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from PIL import Image, ImageDraw, ImageFont, ImageOps

from gateway import qr
from gateway.errors import ApiError
from gateway.fonts import AUTO, Face, FontCatalog, FontProblem

WIDTH, HEIGHT = 1240, 1748
DPI = 300
PAD = 96
QR_BOX = 640  # the QR code (with its quiet zone) is at most this wide
LOGO_BOX = (480, 180)
INK = (26, 26, 26)
MUTED = (96, 96, 96)
RULE = (222, 222, 222)
TITLE_SIZES = (104, 96, 88, 80, 72, 64, 56)
TEXT_SIZES = (48, 44, 40, 36, 32, 28)
TITLE_LINES, TEXT_LINES = 3, 8
#: Characters every poster draws besides its title and text (the code and its URL).
FIXED_CHARS = string.ascii_letters + string.digits + "-./:*~$=?_%"
#: No line starts with these (closing punctuation hangs at the end of the line before).
NO_LINE_START = frozenset("，。、；：！？）》」』】〕”’,.;:!?)]}%…")
_CJK = "\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef"
#: Line-breaking units: a run of spaces, one CJK character, or a run of anything else (a word).
_TOKENS = re.compile(rf"\s+|[{_CJK}]|[^\s{_CJK}]+")
_CJK_CHAR = re.compile(rf"[{_CJK}]")

FontMaker = Callable[[int], ImageFont.FreeTypeFont]


@dataclass(frozen=True)
class Captions:
    scan: str
    code: str
    url: str


CAPTIONS = {
    "zh": Captions("扫码参与", "邀请码", "扫不了？用浏览器打开"),
    "en": Captions("Scan to join", "Invite code", "Can't scan? Open"),
}


@dataclass(frozen=True)
class PosterContent:
    title: str
    text: str
    code: str
    code_url: str  # where the code works, shown without the scheme
    scan_url: str  # what the QR code holds
    face: Face
    logo: Image.Image | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Line:
    text: str
    box: tuple[int, int, int, int]  # left, top, right, bottom of the drawn glyphs


@dataclass
class Layout:
    """Where everything went: tests and callers read it instead of guessing from pixels."""

    qr_origin: tuple[int, int]
    qr_scale: int
    qr_side: int
    language: str
    lines: list[Line] = field(default_factory=list)
    logo_box: tuple[int, int, int, int] | None = None


def check_font(fonts: FontCatalog, font: str | None, title: str, text: str) -> Face:
    """The face the poster will use; a 400 naming ``poster.font`` when there is none."""
    try:
        return fonts.resolve(font or AUTO, title + text + FIXED_CHARS)
    except FontProblem as exc:
        raise ApiError(
            400, "validation_failed", "invalid campaign", fields={"poster.font": str(exc)}
        ) from None


def render_poster(content: PosterContent) -> tuple[bytes, Layout]:
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    language = "zh" if content.face.covers("".join(vars(CAPTIONS["zh"]).values())) else "en"
    captions = CAPTIONS[language]

    def font(size: int) -> ImageFont.FreeTypeFont:
        return ImageFont.truetype(content.face.path, size, index=content.face.index)

    # The bottom block is laid out first, from the bottom edge up: it must always fit.
    lines: list[Line] = []
    url_text = f"{captions.url} {content.code_url}"
    url_font = _fit_width(font, url_text, WIDTH - 2 * PAD, 34, 18)
    y = HEIGHT - PAD - _height(url_font)
    lines.append(_draw(draw, url_text, url_font, y, MUTED))
    code_font = font(76)
    y -= 24 + _height(code_font)
    lines.append(_draw(draw, f"{captions.code} {content.code}", code_font, y, INK))
    scan_font = font(40)
    y -= 16 + _height(scan_font)
    lines.append(_draw(draw, captions.scan, scan_font, y, MUTED))

    with_logo = content.logo is not None
    modules = qr.symbol(content.scan_url, with_logo).symbol_size(scale=1, border=0)[0]
    scale = QR_BOX // (modules + 2 * qr.QUIET_ZONE)
    code_image = qr.render_image(content.scan_url, scale, qr.QUIET_ZONE, content.logo)
    qr_top = y - 8 - code_image.height
    qr_left = (WIDTH - code_image.width) // 2
    image.paste(code_image, (qr_left, qr_top))  # pasted pixel for pixel: never resampled
    draw.line((PAD, qr_top - 28, WIDTH - PAD, qr_top - 28), fill=RULE, width=3)

    layout = Layout((qr_left, qr_top), scale, code_image.width, language)
    top_lines, logo_box = _top_block(image, draw, content, font, bottom=qr_top - 72)
    layout.lines = top_lines + lines[::-1]
    layout.logo_box = logo_box
    out = io.BytesIO()
    image.save(out, format="PNG", dpi=(DPI, DPI))
    return out.getvalue(), layout


def _top_block(
    image: Image.Image,
    draw: ImageDraw.ImageDraw,
    content: PosterContent,
    font: FontMaker,
    bottom: int,
) -> tuple[list[Line], tuple[int, int, int, int] | None]:
    """Logo, title and text, as large as fits above the QR code, centred in that space."""
    logo = None
    if content.logo is not None:
        logo = ImageOps.contain(content.logo, LOGO_BOX, Image.Resampling.LANCZOS)
    logo_height = logo.height + 40 if logo is not None else 0
    room = bottom - PAD - logo_height
    width = WIDTH - 2 * PAD
    title_lines: list[str] = []
    text_lines: list[str] = []
    title_font = font(TITLE_SIZES[-1])
    text_font = font(TEXT_SIZES[-1])
    fitted = False
    # First pass: no title line of one or two characters left alone (a smaller size avoids it).
    sizes = [(size, True) for size in TITLE_SIZES] + [(size, False) for size in TITLE_SIZES]
    for title_size, strict in sizes:
        title_font = font(title_size)
        title_lines = wrap(content.title, title_font, width)
        if len(title_lines) > TITLE_LINES or (
            strict and len(title_lines) > 1 and len(title_lines[-1]) < 3
        ):
            continue
        for text_size in TEXT_SIZES:
            text_font = font(text_size)
            text_lines = wrap(content.text, text_font, width)
            if (
                len(text_lines) <= TEXT_LINES
                and _block(title_lines, title_font, text_lines, text_font) <= room
            ):
                fitted = True
                break
        if fitted:
            break
    if not fitted:  # the smallest sizes, cut to the room there is
        title_lines = _cut(wrap(content.title, title_font, width), TITLE_LINES, title_font, width)
        spare = room - _block(title_lines, title_font, [], text_font)
        text_lines = _cut(
            wrap(content.text, text_font, width),
            max(0, spare // _leading(text_font)),
            text_font,
            width,
        )

    used = logo_height + _block(title_lines, title_font, text_lines, text_font)
    y = PAD + max(0, (bottom - PAD - used) // 2)
    logo_box = None
    if logo is not None:
        x = (WIDTH - logo.width) // 2
        image.paste(logo, (x, y), logo if logo.mode == "RGBA" else None)
        logo_box = (x, y, x + logo.width, y + logo.height)
        y += logo_height
    lines = []
    for line in title_lines:
        lines.append(_draw(draw, line, title_font, y, INK))
        y += _leading(title_font)
    if text_lines:
        y += 28
    for line in text_lines:
        lines.append(_draw(draw, line, text_font, y, INK))
        y += _leading(text_font)
    return lines, logo_box


def wrap(text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """Greedy line breaking: between CJK characters, at spaces, inside words only if a word is
    wider than a line; closing punctuation stays on the line before."""
    lines: list[str] = []
    for paragraph in text.splitlines():
        line = ""
        for token in _TOKENS.findall(paragraph):
            if token.isspace():
                line = line + " " if line else line
                continue
            if line and token in NO_LINE_START and font.getlength(line + token) > width:
                # Closing punctuation may not start a line: carry the character before it over
                # with it when that is a CJK character, else let it hang past the margin.
                if len(line) > 1 and _CJK_CHAR.fullmatch(line[-1]):
                    lines.append(line[:-1].rstrip())
                    line = line[-1]
                line += token
                continue
            if not line or font.getlength(line + token) <= width:
                if font.getlength(token) > width:  # a word wider than the line: break it
                    for char in token:
                        if line and font.getlength(line + char) > width:
                            lines.append(line.rstrip())
                            line = ""
                        line += char
                else:
                    line += token
                continue
            lines.append(line.rstrip())
            line = token
        if line.strip():
            lines.append(line.rstrip())
    return lines


def _cut(lines: Sequence[str], limit: int, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    if len(lines) <= limit:
        return list(lines)
    if limit == 0:
        return []
    last = lines[limit - 1]
    while last and font.getlength(last + "…") > width:
        last = last[:-1]
    return [*lines[: limit - 1], last + "…"]


def _leading(font: ImageFont.FreeTypeFont) -> int:
    return round(font.size * 1.3)


def _height(font: ImageFont.FreeTypeFont) -> int:
    return round(font.size * 1.2)


def _block(
    title: Sequence[str],
    title_font: ImageFont.FreeTypeFont,
    text: Sequence[str],
    text_font: ImageFont.FreeTypeFont,
) -> int:
    height = len(title) * _leading(title_font)
    if text:
        height += 28 + len(text) * _leading(text_font)
    return height


def _fit_width(
    font: FontMaker, text: str, width: int, largest: int, smallest: int
) -> ImageFont.FreeTypeFont:
    for size in range(largest, smallest - 1, -2):
        chosen = font(size)
        if chosen.getlength(text) <= width:
            return chosen
    return font(smallest)


def _draw(
    draw: ImageDraw.ImageDraw,
    text: str,
    font: ImageFont.FreeTypeFont,
    y: int,
    fill: tuple[int, int, int],
) -> Line:
    x = WIDTH // 2
    draw.text((x, y), text, font=font, fill=fill, anchor="ma")
    left, top, right, bottom = draw.textbbox((x, y), text, font=font, anchor="ma")
    return Line(text, (int(left), int(top), int(right), int(bottom)))
