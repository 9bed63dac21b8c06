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


def zrevpage(
    client: Any,
    key: str,
    *,
    limit: int,
    after: tuple[float, str] | None = None,
    offset: int = 0,
    count: bool = False,
) -> tuple[list[tuple[str, float]], int | None]:
    """Up to ``limit + 1`` members of a sorted set, highest score first (equal scores by
    member, descending, as ZREVRANGE orders them), starting after ``after`` (the score and
    member of the previous page's last row: keyset paging) or at rank ``offset``; and the set's
    size when ``count``. One round trip. The extra member says whether a next page exists."""
    pipe = client.pipeline(transaction=False)
    if after is None:
        pipe.zrevrange(key, offset, offset + limit, withscores=True)
    else:
        score = repr(after[0])
        # Members at the cursor's very score (rewards are timed to the microsecond: a tie is
        # rare, so reading them all is cheap), then a page of lower ones.
        pipe.zrangebyscore(key, score, score)
        pipe.zrevrangebyscore(key, f"({score}", "-inf", start=0, num=limit + 1, withscores=True)
    if count:
        pipe.zcard(key)
    found = pipe.execute()
    total = int(found.pop()) if count else None
    if after is None:
        return [(m.decode(), float(s)) for m, s in found[0]], total
    last = after[1].encode()
    tied = [m for m in reversed(found[0]) if m < last]  # Redis orders ties by their bytes
    window = [(m.decode(), after[0]) for m in tied[: limit + 1]]
    window += [(m.decode(), float(s)) for m, s in found[1]]
    return window[: limit + 1], total


def malformed() -> ApiError:
    """The 400 for a cursor whose position is not one this listing gives."""
    return _invalid(MALFORMED)


def _invalid(problem: str) -> ApiError:
    return ApiError(400, "validation_failed", "invalid cursor", fields={"cursor": problem})
