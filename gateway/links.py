"""Signed share-link tokens: compact, verifiable without the store, rotated by key id.

A token is ``<payload>.<signature>`` as produced by :class:`itsdangerous.Signer` with its own salt.
The payload is a few varint-packed fields in URL-safe base64, so a token is about 46 characters
(QR codes stay at a low version and easy to scan):

    byte 0      format version (high nibble) | flags (low nibble; bit 0: reached by QR scan)
    bytes 1-2   key id: which secret signed it (stable across list reordering)
    varint      campaign id
    varint      referrer id (per campaign, assigned when the first link is minted)
    varint      issue time, seconds since 2024-01-01 UTC
    varint      referrer link generation (revoking a sharer bumps it)

The signer is HMAC-SHA1 (itsdangerous's default, 27 characters of signature); as a MAC it has no
known weakness, and a SHA-256 signature would push tokens past 60 characters.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

from itsdangerous import BadSignature, Signer

SALT = "refgate.share-link.v1"
FORMAT_VERSION = 1
FLAG_SCAN = 0x1
EPOCH = 1_704_067_200  # 2024-01-01T00:00:00Z
MAX_PAYLOAD_BYTES = 40
SIGNATURE_CHARS = 27  # 20 bytes of HMAC-SHA1 in unpadded URL-safe base64


class InvalidLink(ValueError):
    """The token is malformed, signed with an unknown key, or its signature does not match."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ShareLink:
    campaign_id: int
    referrer_id: int
    issued_at: int  # unix seconds
    generation: int = 0
    scan: bool = False

    def as_scan(self) -> ShareLink:
        return replace(self, scan=True)

    def as_link(self) -> ShareLink:
        return replace(self, scan=False)


def key_id(secret: bytes) -> int:
    return int.from_bytes(hashlib.sha256(b"refgate.key-id:" + secret).digest()[:2], "big")


class LinkCodec:
    """Signs with the newest key; verifies with the key the token names, if it is still listed."""

    def __init__(self, secret_keys: Sequence[bytes]) -> None:
        if not secret_keys:
            raise ValueError("at least one secret key is required")
        self._signers: dict[int, Signer] = {}
        for secret in secret_keys:
            kid = key_id(secret)
            if kid in self._signers:
                raise ValueError(
                    "two secret keys share a key id; replace the newer one with another random key"
                )
            self._signers[kid] = Signer(secret, salt=SALT)
        self._newest = key_id(secret_keys[0])
        # Shared links are opened many times: a hit skips the HMAC. Only valid tokens are
        # cached (a failed decode raises), so junk tokens cannot crowd out real ones.
        self.decode = lru_cache(maxsize=65536)(self._decode)  # type: ignore[method-assign]

    def encode(self, link: ShareLink) -> str:
        payload = bytearray()
        payload.append((FORMAT_VERSION << 4) | (FLAG_SCAN if link.scan else 0))
        payload += self._newest.to_bytes(2, "big")
        for value in (link.campaign_id, link.referrer_id, link.issued_at - EPOCH, link.generation):
            _put_varint(payload, value)
        body = base64.urlsafe_b64encode(bytes(payload)).rstrip(b"=")
        return self._signers[self._newest].sign(body).decode("ascii")

    def decode(self, token: str) -> ShareLink:
        return self._decode(token)

    def _decode(self, token: str) -> ShareLink:
        if not token or len(token) > 120 or not token.isascii():
            raise InvalidLink("malformed")
        raw = token.encode("ascii")
        body, sep, signature = raw.partition(b".")
        if not sep or not body or len(body) > MAX_PAYLOAD_BYTES * 4 // 3 + 2:
            raise InvalidLink("malformed")
        # base64 leaves spare bits in the last character: without this check four spellings of
        # the same signature would verify, i.e. four tokens for one link.
        if len(signature) != SIGNATURE_CHARS or not _canonical_b64(signature):
            raise InvalidLink("malformed")
        try:
            payload = base64.urlsafe_b64decode(body + b"=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raise InvalidLink("malformed") from None
        # Canonical encoding only: a second spelling of the same payload would be a second token.
        if base64.urlsafe_b64encode(payload).rstrip(b"=") != body:
            raise InvalidLink("malformed")
        if len(payload) < 7 or payload[0] >> 4 != FORMAT_VERSION or payload[0] & 0x0E:
            raise InvalidLink("malformed")
        signer = self._signers.get(int.from_bytes(payload[1:3], "big"))
        if signer is None:
            raise InvalidLink("unknown-key")
        try:
            signer.unsign(raw)
        except BadSignature:
            raise InvalidLink("bad-signature") from None
        values, offset = [], 3
        for _ in range(4):
            value, offset = _get_varint(payload, offset)
            values.append(value)
        if offset != len(payload):
            raise InvalidLink("malformed")
        campaign_id, referrer_id, issued, generation = values
        return ShareLink(
            campaign_id=campaign_id,
            referrer_id=referrer_id,
            issued_at=issued + EPOCH,
            generation=generation,
            scan=bool(payload[0] & FLAG_SCAN),
        )


def _canonical_b64(text: bytes) -> bool:
    try:
        decoded = base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return False
    return base64.urlsafe_b64encode(decoded).rstrip(b"=") == text


def _put_varint(out: bytearray, value: int) -> None:
    if value < 0:
        raise ValueError("varints are unsigned")
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return


def _get_varint(data: bytes, offset: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if offset >= len(data) or shift > 56:
            raise InvalidLink("malformed")
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            # Reject over-long encodings (a trailing 0x00 continuation) so each value has one form.
            if byte == 0 and shift:
                raise InvalidLink("malformed")
            return value, offset
        shift += 7
