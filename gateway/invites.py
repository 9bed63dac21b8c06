"""Invite codes: a short code a person can type when scanning a sharer's QR code fails.

A code names a sharer in a campaign and is derived from the two numeric ids alone, so it needs
no storage and never changes: ``GET /c/<code>`` decodes it and sends the person to the sharer's
current link. It is as public as the share link it leads to (it grants nothing the link does not).

Format: the two ids are paired into one number (Szudzik's pairing, a bijection of pairs of
naturals onto the naturals that keeps small pairs small), written in Crockford's base32 (no I, L,
O, U; decoding forgives case and reads I/L as 1, O as 0), at least five symbols, followed by
Crockford's check symbol (the number modulo 37, which catches every single wrong symbol and every
swap of two neighbours), grouped in fours: ``7K3M-Q9``. Crockford's check alphabet adds
``*~$=U`` to the 32 symbols, so about one code in seven ends in one of those.

Hand-written rather than taken from a base32 package: the ones on PyPI are unmaintained, and the
encoding is a few lines.
"""

from __future__ import annotations

import math

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CHECK_SYMBOLS = ALPHABET + "*~$=U"
MIN_DIGITS = 5
MAX_DIGITS = 24  # far beyond any real pair of ids; bounds the work a junk code costs
GROUP = 4
#: What :func:`invite_code` writes (parsing is more forgiving: any case, no dashes, O/I/L).
_SYMBOL = "[0-9A-HJKMNP-TV-Z]"
INVITE_CODE_PATTERN = rf"^{_SYMBOL}{{4}}(-{_SYMBOL}{{4}})*-{_SYMBOL}{{0,3}}[0-9A-HJKMNP-TV-Z*~$=U]$"
_VALUES = {symbol: value for value, symbol in enumerate(ALPHABET)}
_ALIASES = {"O": "0", "I": "1", "L": "1"}


class InvalidCode(ValueError):
    """Not an invite code: bad symbol, bad length, or the check symbol does not match."""


def invite_code(campaign_id: int, referrer_id: int) -> str:
    number = pair(campaign_id, referrer_id)
    digits = ""
    while number or len(digits) < MIN_DIGITS:
        number, digit = divmod(number, 32)
        digits = ALPHABET[digit] + digits
    symbols = digits + CHECK_SYMBOLS[pair(campaign_id, referrer_id) % 37]
    return "-".join(symbols[i : i + GROUP] for i in range(0, len(symbols), GROUP))


def parse_invite_code(code: str) -> tuple[int, int]:
    """The (campaign id, referrer id) a code names; raises :class:`InvalidCode`."""
    cleaned = "".join(_ALIASES.get(c, c) for c in code.upper() if c not in "- ")
    if not MIN_DIGITS + 1 <= len(cleaned) <= MAX_DIGITS + 1 or not cleaned.isascii():
        raise InvalidCode("wrong length")
    digits, check = cleaned[:-1], cleaned[-1]
    number = 0
    for symbol in digits:
        value = _VALUES.get(symbol)
        if value is None:
            raise InvalidCode(f"not a code symbol: {symbol!r}")
        number = number * 32 + value
    if check not in CHECK_SYMBOLS or CHECK_SYMBOLS.index(check) != number % 37:
        raise InvalidCode("check symbol does not match")
    # One spelling per code: zero padding only up to the minimum length.
    if len(digits) > MIN_DIGITS and digits[0] == "0":
        raise InvalidCode("not canonical")
    return unpair(number)


def pair(a: int, b: int) -> int:
    if a < 0 or b < 0:
        raise ValueError("ids are natural numbers")
    return a * a + a + b if a >= b else b * b + a


def unpair(number: int) -> tuple[int, int]:
    root = math.isqrt(number)
    rest = number - root * root
    return (rest, root) if rest < root else (root, rest - root)
