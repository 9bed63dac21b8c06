"""Installed fonts: which families exist, which can draw Chinese, which can draw a given text.

Posters are Chinese by default, so the renderer needs a CJK font, and a campaign that names a
font that is not installed must be refused when it is saved, not drawn as boxes later. Fonts are
found by reading the files in the font directories with fontTools (family names in every language
the font lists, weight, slant, character map), so the answer does not depend on a fontconfig
binary being present in the container.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from fontTools.ttLib import TTCollection, TTFont, TTLibError

log = logging.getLogger(__name__)

#: Where Debian (and most Linux distributions) install fonts, system-wide and per user.
DEFAULT_FONT_DIRS = (
    Path("/usr/share/fonts"),
    Path("/usr/local/share/fonts"),
    Path("~/.local/share/fonts").expanduser(),
    Path("~/.fonts").expanduser(),
)
FONT_SUFFIXES = {".ttf", ".otf", ".ttc", ".otc"}
#: What to install when no CJK font is there: small first, complete second.
CJK_PACKAGES = "fonts-wqy-microhei (or fonts-noto-cjk)"
#: A few common Han characters (simplified and traditional): a font with all of them is a CJK font.
CJK_SAMPLE = "中文汉字漢體邀请码扫"
#: Families "auto" tries first, in order, before any other font that can draw the text.
PREFERRED_CJK = (
    "noto sans cjk sc",
    "noto sans sc",
    "source han sans sc",
    "wenquanyi micro hei",
    "wenquanyi zen hei",
)
PREFERRED_LATIN = ("dejavu sans", "liberation sans", "noto sans")
AUTO = "auto"


class FontProblem(ValueError):
    """No installed font fits: the message says what to install or choose instead."""


@dataclass(frozen=True)
class Face:
    """One face of a font file (a .ttc holds several)."""

    path: str
    index: int
    family: str  # the English (or first) family name
    names: frozenset[str] = field(compare=False)  # every family name, lowercased
    weight: int = 400
    italic: bool = False
    width: int = 5  # OS/2 width class: 5 is normal, lower is condensed

    @property
    def regular(self) -> bool:
        return self.weight == 400 and not self.italic

    def covers(self, text: str) -> bool:
        chars = _codepoints(self.path, self.index)
        return all(ord(c) in chars for c in text if not c.isspace())

    def missing(self, text: str) -> list[str]:
        chars = _codepoints(self.path, self.index)
        return sorted({c for c in text if not c.isspace() and ord(c) not in chars})


def is_cjk(text: str) -> bool:
    """True if ``text`` has a character of the CJK, kana or hangul blocks."""
    return any(
        "\u2e80" <= c <= "\u9fff"  # radicals, punctuation, kana, CJK unified ideographs
        or "\uac00" <= c <= "\ud7af"  # hangul syllables
        or "\uf900" <= c <= "\ufaff"  # compatibility ideographs
        or "\uff00" <= c <= "\uffef"  # full-width forms
        or "\U00020000" <= c <= "\U0003134f"  # extension B and later
        for c in text
    )


class FontCatalog:
    """The faces installed under some directories, scanned once on first use."""

    def __init__(self, dirs: Sequence[Path] = ()) -> None:
        self.dirs = tuple(dirs) or DEFAULT_FONT_DIRS
        self._faces: list[Face] | None = None
        self._lock = threading.Lock()

    def faces(self) -> list[Face]:
        if self._faces is None:
            with self._lock:
                if self._faces is None:
                    self._faces = sorted(_scan(self.dirs), key=_rank)
        return self._faces

    def families(self) -> list[str]:
        return sorted({face.family for face in self.faces()}, key=str.lower)

    def find(self, family: str) -> Face | None:
        """The most regular face of an installed family (any of its names, any case)."""
        wanted = family.strip().lower()
        return next((face for face in self.faces() if wanted in face.names), None)

    def cjk(self) -> Face | None:
        """The first CJK face found, preferred families first."""
        return self._first(CJK_SAMPLE, PREFERRED_CJK)

    def resolve(self, font: str, text: str) -> Face:
        """The face to draw ``text`` with: the family ``font`` names, or for "auto" the first CJK
        face (any face that can draw ``text`` when no CJK face is installed and ``text`` has no
        CJK characters). Raises :class:`FontProblem` saying what to do."""
        if font.strip().lower() == AUTO:
            face = self.cjk()
            if face is not None and face.covers(text):
                return face
            if is_cjk(text) and face is None:
                raise FontProblem(
                    f"no CJK font is installed to draw the Chinese text; "
                    f"install the Debian package {CJK_PACKAGES}"
                )
            other = self._first(text, PREFERRED_LATIN)
            if other is not None:
                return other
            # Name what the closest face lacks (an emoji, mostly), not the whole text; a CJK
            # package helps only when there is no CJK face yet.
            closest = face or self.closest(text)
            missing = closest.missing(text) if closest is not None else sorted(set(text))
            raise FontProblem(
                f"no installed font can draw {''.join(missing[:10])!r}; "
                + (
                    "leave them out or install a font that has them"
                    if face is not None
                    else f"install the Debian package {CJK_PACKAGES}"
                )
            )
        face = self.find(font)
        if face is None:
            known = self.families()
            shown = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
            raise FontProblem(
                f'font {font!r} is not installed; use "auto" or one of: {shown or "none"}'
                + ("" if self.cjk() else f" (for Chinese install {CJK_PACKAGES})")
            )
        missing = face.missing(text)
        if missing:
            raise FontProblem(
                f"font {face.family!r} cannot draw {''.join(missing[:10])!r}; "
                'use "auto" or a CJK font'
                + ("" if self.cjk() else f" (install the Debian package {CJK_PACKAGES})")
            )
        return face

    def closest(self, text: str) -> Face | None:
        """The face that draws the most of ``text`` (the CJK face on a tie)."""
        faces = [face for face in (self.cjk(), *self.faces()) if face is not None]
        if not faces:
            return None
        return min(faces, key=lambda face: len(face.missing(text)))

    def drawable(self, text: str) -> str:
        """``text`` without what the closest face cannot draw (emoji, mostly): for text shown
        on a best-effort basis, such as a campaign's name on a poster it has not configured.
        Chinese is kept: a server without a CJK font must say so, not print a poster without
        its title."""
        face = self.closest(text)
        if face is None:
            return text
        missing = {c for c in face.missing(text) if not is_cjk(c)}
        return "".join(c for c in text if c not in missing)

    def _first(self, text: str, preferred: Sequence[str]) -> Face | None:
        faces = self.faces()
        for family in preferred:
            face = next((f for f in faces if family in f.names and f.covers(text)), None)
            if face is not None:
                return face
        return next((f for f in faces if f.covers(text)), None)


def _rank(face: Face) -> tuple[bool, int, int, bool, str, int]:
    # Regular upright faces of normal width first, so find() and "auto" pick a family's book face.
    return (
        face.italic,
        abs(face.weight - 400),
        abs(face.width - 5),
        "mono" in face.family.lower(),
        face.path,
        face.index,
    )


def _font_files(dirs: Iterable[Path]) -> Iterator[Path]:
    seen: set[Path] = set()
    for root in dirs:
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if path.suffix.lower() in FONT_SUFFIXES and path.is_file():
                real = path.resolve()
                if real not in seen:  # Debian links the same file from several places
                    seen.add(real)
                    yield real


def _scan(dirs: Iterable[Path]) -> Iterator[Face]:
    for path in _font_files(dirs):
        try:
            if path.suffix.lower() in {".ttc", ".otc"}:
                with TTCollection(str(path), lazy=True) as collection:
                    for index, font in enumerate(collection.fonts):
                        yield _face(font, str(path), index)
            else:
                with TTFont(str(path), lazy=True) as font:
                    yield _face(font, str(path), 0)
        except (TTLibError, OSError, KeyError, AssertionError) as exc:
            # A broken file in a font directory must not take the poster feature down.
            log.warning("skipping unreadable font %s: %s", path, exc)


def _face(font: TTFont, path: str, index: int) -> Face:
    table = font["name"]
    # nameID 16 is the typographic family (without weight), 1 the legacy family.
    names = {
        record.toUnicode().strip().lower()
        for record in table.names
        if record.nameID in (1, 16) and record.toUnicode().strip()
    }
    family = table.getBestFamilyName() or path.rsplit("/", 1)[-1]
    os2 = font.get("OS/2")
    weight = int(os2.usWeightClass) if os2 is not None else 400
    italic = bool(os2.fsSelection & 0x01) if os2 is not None else False
    width = int(os2.usWidthClass) if os2 is not None else 5
    return Face(path, index, family, frozenset(names | {family.lower()}), weight, italic, width)


@cache
def _codepoints(path: str, index: int) -> frozenset[int]:
    with TTFont(path, fontNumber=index, lazy=True) as font:
        return frozenset(font.getBestCmap() or {})
