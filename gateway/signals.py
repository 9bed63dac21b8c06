"""Gathering a click's signals from the request: the raw IP is used here and then dropped."""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from functools import lru_cache
from typing import Any

from detectors.base import ClickInput
from detectors.networks import network_class
from gateway.links import ShareLink
from gateway.platforms import ClientInfo

VISITOR_COOKIE = "rg_vid"
VISITOR_COOKIE_MAX_AGE = 400 * 86400  # browsers cap cookie lifetimes at 400 days
_VISITOR_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

#: Request headers detectors may read, beyond User-Agent, Accept-Language and Referer.
HINT_HEADERS = (
    "sec-ch-ua",
    "sec-ch-ua-mobile",
    "sec-ch-ua-platform",
    "sec-fetch-site",
    "sec-fetch-mode",
    "sec-fetch-dest",
    "x-requested-with",
)


class IpHasher:
    """Salted hashes of IPs: stable for features, not reversible without the key."""

    def __init__(self, key: bytes) -> None:
        self._key = hashlib.sha256(key).digest()
        # Per instance (the key differs between apps); busy IPs (carrier NAT) repeat a lot.
        self._cached = lru_cache(maxsize=65536)(self._hash)

    def _hash(self, ip: str) -> str:
        return hashlib.blake2b(ip.encode(), key=self._key, digest_size=10).hexdigest()

    def __call__(self, ip: str) -> str:
        return self._cached(ip)


def network_prefix(ip: str) -> str:
    """The /24 (IPv4) or /48 (IPv6) a client address belongs to; '' when it is not an address."""
    # Dotted IPv4, by far the common case, without the ipaddress module (10x cheaper).
    parts = ip.split(".")
    if len(parts) == 4 and all(
        p.isascii() and p.isdigit() and len(p) <= 3 and int(p) <= 255 for p in parts
    ):
        return f"{int(parts[0])}.{int(parts[1])}.{int(parts[2])}.0/24"
    return _other_prefix(ip)


@lru_cache(maxsize=16384)
def _other_prefix(ip: str) -> str:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    bits = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{bits}", strict=False))


def visitor_cookie(visitor_id: str, secure: bool) -> str:
    """The Set-Cookie value for a new visitor (built directly: werkzeug's builder costs ~20 us)."""
    suffix = "; Secure" if secure else ""
    return (
        f"{VISITOR_COOKIE}={visitor_id}; Max-Age={VISITOR_COOKIE_MAX_AGE}; Path=/; HttpOnly; "
        f"SameSite=Lax{suffix}"
    )


def new_visitor_id() -> str:
    return secrets.token_urlsafe(16)


def valid_visitor_id(value: str | None) -> bool:
    return value is not None and len(value) == 22 and set(value) <= _VISITOR_ALPHABET


#: WSGI environ key under which replay passes (ip hash, prefix, network class) of exported
#: traffic. HTTP clients cannot set environ keys that contain a dot.
REPLAYED_NETWORK = "refgate.replayed_network"

#: WSGI environ names of the hint headers.
_HINT_ENVIRON = tuple((name, "HTTP_" + name.upper().replace("-", "_")) for name in HINT_HEADERS)


class SignalGatherer:
    def __init__(self, ip_hasher: IpHasher) -> None:
        self._hash_ip = ip_hasher

    def gather(
        self, environ: dict[str, Any], link: ShareLink, now: float, client: ClientInfo
    ) -> ClickInput:
        # Straight from the WSGI environ: werkzeug's header and cookie objects cost more than
        # the lookups themselves on this path. REMOTE_ADDR is the client: ProxyFix has applied
        # REFGATE_TRUSTED_PROXIES before this runs.
        ip = environ.get("REMOTE_ADDR") or ""
        cookie = _visitor_from(environ.get("HTTP_COOKIE", ""))
        known = valid_visitor_id(cookie)
        if REPLAYED_NETWORK in environ:
            # Replay of exported traffic: the IP was never kept, its hash and prefix were.
            ip_hash, prefix, network = environ[REPLAYED_NETWORK]
        else:
            ip_hash, prefix, network = self._hash_ip(ip), network_prefix(ip), network_class(ip)
        return ClickInput(
            ts=now,
            campaign_id=link.campaign_id,
            referrer_id=link.referrer_id,
            ip_hash=ip_hash,
            prefix=prefix,
            ua=_latin(environ.get("HTTP_USER_AGENT", ""))[:512],
            accept_language=_latin(environ.get("HTTP_ACCEPT_LANGUAGE", ""))[:128],
            referer=_latin(environ.get("HTTP_REFERER", ""))[:512],
            visitor_id=cookie if known else new_visitor_id(),
            new_visitor=not known,
            scan=link.scan,
            network=network,
            platform=client.platform.key,
            in_app=client.platform.in_app,
            os=client.os,
            headers={
                name: _latin(value)[:256]
                for name, key in _HINT_ENVIRON
                if (value := environ.get(key))
            },
        )


def _visitor_from(cookie_header: str) -> str | None:
    marker = VISITOR_COOKIE + "="
    if marker not in cookie_header:
        return None
    for part in cookie_header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == VISITOR_COOKIE:
            return value
    return None


def _latin(value: str) -> str:
    # WSGI gives header bytes as latin-1 strings; recover UTF-8 text where it was UTF-8.
    if value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value
