"""Text fields of API input: limits apply to what was sent, surrounding blanks are then dropped.

Pydantic's ``str_strip_whitespace`` strips before checking ``max_length``, which would make the
published schema (whose ``maxLength`` counts what is sent) untrue; these types check first.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, Field

#: Control characters a text of several lines may hold; every other one is refused (a NUL or
#: an escape sequence in a name ends up in consoles, posters, webhooks and CSV exports).
_LINE_BREAKS = frozenset("\n\r\t")


def _controls(value: str, allowed: frozenset[str]) -> None:
    if any(unicodedata.category(ch) == "Cc" and ch not in allowed for ch in value):
        raise ValueError("must not contain control characters")


def _strip(value: str) -> str:
    _controls(value, _LINE_BREAKS)
    return value.strip()


def _strip_nonblank(value: str) -> str:
    _controls(value, frozenset())
    stripped = value.strip()
    if not stripped:
        raise ValueError("must not be blank")
    return stripped


Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_strip_nonblank)]
PosterTitle = Annotated[str, Field(min_length=1, max_length=40), AfterValidator(_strip_nonblank)]
PosterText = Annotated[str, Field(max_length=200), AfterValidator(_strip)]
FontName = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_strip_nonblank)]
ShareText = Annotated[str, Field(max_length=300), AfterValidator(_strip)]
Note = Annotated[str, Field(max_length=500), AfterValidator(_strip)]
LongNote = Annotated[str, Field(max_length=2000), AfterValidator(_strip)]


def ascii_digits(value: str) -> bool:
    """Whether ``value`` is one or more of 0-9. ``str.isdigit`` also takes '²' (which ``int``
    then refuses: a 500) and other scripts' digits (which ``int`` reads: '٣' is 3)."""
    return value.isascii() and value.isdigit()


#: The largest offset (or cursor) a list in the API takes: far beyond any list, and small
#: enough that a slice or a Redis range over it never overflows.
MAX_OFFSET = 10**9
