"""Campaign destinations: checked and normalised once, when a campaign is saved.

The click path only ever redirects to the stored, normalised destination; nothing in a request
can change it. The rules close the open-redirect tricks browsers would otherwise interpret:
userinfo (``https://trusted@evil``), scheme-relative and backslash forms, IP literals in any
spelling (decimal, octal, hex, IPv6-mapped), percent-encoded or Unicode look-alike dots, control
characters and non-http schemes.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlsplit

import idna

from gateway.validation import ascii_digits

MAX_URL_LENGTH = 2000
#: The query parameter carrying the click id to the landing page (gateway.clickpath).
CLICK_PARAM = "rg_click"
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
# Characters kept as they are in path, query and fragment; everything else is percent-encoded.
_SAFE_PATH = "/%:@!$&'()*+,;=-._~"
_SAFE_QUERY = _SAFE_PATH + "?"


class InvalidDestination(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Destination:
    url: str
    host: str

    @property
    def home(self) -> str:
        """The destination site's front page (scheme, host and port as configured)."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}/"

    def with_param(self, name: str, value: str) -> str:
        """The destination with one query parameter appended (before any fragment)."""
        base, hash_mark, fragment = self.url.partition("#")
        joiner = "&" if "?" in base else "?"
        return f"{base}{joiner}{name}={value}{hash_mark}{fragment}"


def normalise_destination(raw: object, allowed_hosts: Sequence[str] = ()) -> Destination:
    if not isinstance(raw, str):
        raise InvalidDestination("must be a string")
    url = raw.strip()
    if not url:
        raise InvalidDestination("must not be empty")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidDestination(f"longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise InvalidDestination("contains whitespace or control characters")
    if "\\" in url:
        raise InvalidDestination("contains a backslash")
    scheme, sep, _ = url.partition("://")
    if not sep or scheme.lower() not in {"http", "https"}:
        raise InvalidDestination("must be an absolute http:// or https:// URL")
    parts = urlsplit(url)
    netloc = parts.netloc
    if not netloc:
        raise InvalidDestination("has no host")
    if "@" in netloc:
        raise InvalidDestination("must not contain user information (user@host)")
    if netloc.startswith("["):
        raise InvalidDestination("host must be a domain name, not an IP address")
    host_raw, _, port_raw = netloc.partition(":")
    host = _normalise_host(host_raw)
    port = _normalise_port(port_raw, parts.scheme.lower())
    if allowed_hosts and not any(host == h or host.endswith("." + h) for h in allowed_hosts):
        raise InvalidDestination(f"host {host} is not in REFGATE_DESTINATION_HOSTS")
    if any(name == CLICK_PARAM for name, _ in parse_qsl(parts.query, keep_blank_values=True)):
        # A landing URL copied from the address bar after a test click: every click would land
        # with two rg_click values, the stale one first, and the landing app would report it.
        raise InvalidDestination("must not carry rg_click: refgate adds each click's own")
    path = quote(parts.path or "/", safe=_SAFE_PATH)
    if path.startswith("//"):
        # "https://host//evil.example" is harmless for us, but collapse it so the stored URL
        # cannot be mistaken for a scheme-relative one by any later consumer.
        path = "/" + path.lstrip("/")
    query = quote(parts.query, safe=_SAFE_QUERY)
    fragment = quote(parts.fragment, safe=_SAFE_QUERY)
    normalised = f"{parts.scheme.lower()}://{host}{port}{path}"
    if query:
        normalised += "?" + query
    if fragment:
        normalised += "#" + fragment
    return Destination(url=normalised, host=host)


def _normalise_host(raw: str) -> str:
    if not raw:
        raise InvalidDestination("has no host")
    if "%" in raw:
        raise InvalidDestination("host must not be percent-encoded")
    try:
        # UTS 46 mapping folds case and full-width/ideographic dots the way browsers do, so the
        # host we store is the host a browser would visit.
        host = idna.encode(raw, uts46=True, transitional=False).decode("ascii")
    except idna.IDNAError as exc:
        raise InvalidDestination(f"host is not a valid domain name ({exc})") from None
    except UnicodeError:
        raise InvalidDestination("host is not a valid domain name") from None
    host = host.lower().rstrip(".")
    labels = host.split(".")
    if len(labels) < 2:
        raise InvalidDestination("host must be a fully qualified domain name")
    if any(not _LABEL.fullmatch(label) for label in labels):
        raise InvalidDestination("host is not a valid domain name")
    # WHATWG URL parsing treats a host whose last label is numeric as an IPv4 address
    # (2130706433, 0x7f.1, 0177.0.0.1 ...): refuse all of them, not only dotted quads.
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        raise InvalidDestination("host must be a domain name, not an IP address")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host
    raise InvalidDestination("host must be a domain name, not an IP address")


def _normalise_port(raw: str, scheme: str) -> str:
    if not raw:
        return ""
    if not ascii_digits(raw) or len(raw) > 5:
        raise InvalidDestination("port must be a number")
    port = int(raw)
    if not 1 <= port <= 65535:
        raise InvalidDestination("port must be between 1 and 65535")
    if (scheme, port) in {("http", 80), ("https", 443)}:
        return ""
    return f":{port}"
