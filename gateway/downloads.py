"""Names of downloaded files (a link's QR codes and poster), and the header that gives them.

A name is made of a campaign's slug and a sharer's external id, which may be an email address or
carry ``:`` (``alice@example.com``, ``crm:1042``): ``:`` is no file name character on Windows
and macOS, and ``/``, ``\\``, quotes or a line break would break the path or the header. Such
characters become ``_``; letters of any script are kept, sent in ``filename*`` (RFC 6266,
RFC 5987's UTF-8 encoding) beside an ASCII ``filename`` for clients that read only that.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

#: Never in a file name: path separators, what Windows refuses, the header's own syntax (quotes,
#: ``;``, ``,``) and ``%`` (a client could percent-decode it again).
_UNSAFE = frozenset("/\\:*?\"<>|;,%'`")
#: A name's length at most, in UTF-8 bytes (file systems allow 255; a longest slug and sharer id
#: with a suffix fit in ASCII).
MAX_BYTES = 220
#: RFC 5987 attr-char, which ``filename*`` may carry unencoded.
_ATTR_CHARS = "!#$&+-.^_`|~"


def safe_filename(stem: str, suffix: str) -> str:
    """``stem`` + ``suffix`` (``-poster.png``) as a file name any system takes."""
    text = unicodedata.normalize("NFC", stem)
    cleaned = "".join(
        "_" if c in _UNSAFE or c.isspace() or unicodedata.category(c).startswith("C") else c
        for c in text
    )
    # A leading dot would hide the file on Unix; the suffix always stays whole.
    cleaned = cleaned.lstrip(".") or "download"
    room = MAX_BYTES - len(suffix.encode())
    while len(cleaned.encode()) > room:
        cleaned = cleaned[:-1]
    return cleaned + suffix


def content_disposition(filename: str) -> str:
    """``attachment`` with ``filename`` (made by :func:`safe_filename`). Written here rather than
    through werkzeug's ``send_file``, which builds the same two parameters but wants a file or
    stream to send, where these bodies come from the media cache."""
    ascii_name = "".join(c if c.isascii() else "_" for c in filename)
    header = f'attachment; filename="{ascii_name}"'
    if ascii_name != filename:
        header += f"; filename*=UTF-8''{quote(filename, safe=_ATTR_CHARS)}"
    return header


def link_file(slug: str, referrer: str, file: str) -> str:
    """The name a link's ``file`` (``qr.png``, ``qr.svg``, ``poster.png``) is saved under:
    ``<slug>-<sharer>-qr.png``."""
    return safe_filename(f"{slug}-{referrer}", f"-{file}")
