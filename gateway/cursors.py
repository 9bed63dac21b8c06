"""Opaque cursors for keyset paging: where the last row of a page was, not how many rows came
before it, so rows added meanwhile never shift a page (``GET /rewards``, a webhook's delivery
log).

A cursor is URL-safe base64 of JSON ``{"k": listing, "s": scope, "p": position}``. Its scope
is what the listing was filtered by (campaign, referrer, status; the endpoint): a cursor sent
to another listing, or with other filters, is refused rather than read as a position in a list
it was never in. Nothing in it is secret or trusted: a made-up position is a place in the same
list the caller may read anyway, so it is checked for shape, not signed.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any

from gateway.errors import ApiError

#: Longer than any cursor refgate gives (a position holds at most an id of 128 characters).
MAX_LENGTH = 1024

MALFORMED = "not a cursor this listing gave: send next_cursor as it came"


def encode(listing: str, scope: dict[str, Any], position: list[Any]) -> str:
    document = json.dumps({"k": listing, "s": scope, "p": position}, separators=(",", ":"))
    return base64.urlsafe_b64encode(document.encode()).decode().rstrip("=")


def decode(raw: str, listing: str, scope: dict[str, Any], foreign: str) -> list[Any]:
    """The position in ``raw``; a 400 naming ``cursor`` when it is not a cursor (``MALFORMED``)
    or one of another listing or scope (``foreign``, saying what must match)."""
    try:
        if not raw or len(raw) > MAX_LENGTH or not raw.isascii():
            raise ValueError
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        document = json.loads(text)
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise _invalid(MALFORMED) from None
    if (
        not isinstance(document, dict)
        or set(document) != {"k", "s", "p"}
        or not isinstance(document["k"], str)
        or not isinstance(document["s"], dict)
        or not isinstance(document["p"], list)
    ):
        raise _invalid(MALFORMED)
    if document["k"] != listing or document["s"] != scope:
        raise _invalid(foreign)
    position: list[Any] = document["p"]
    return position


def number(value: Any) -> float:
    """A finite number from a decoded position (JSON has no NaN, but Python's json reads it)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid(MALFORMED)
    try:
        found = float(value)
    except OverflowError:  # an integer beyond any double
        raise _invalid(MALFORMED) from None
    if not math.isfinite(found):
        raise _invalid(MALFORMED)
    return found


def text(value: Any, max_length: int = 200) -> str:
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise _invalid(MALFORMED)
    return value


def _invalid(problem: str) -> ApiError:
    return ApiError(400, "validation_failed", "invalid cursor", fields={"cursor": problem})
