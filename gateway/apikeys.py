"""API keys: random bearer tokens, stored only as SHA-256 digests, each with one role.

Keys carry 256 bits of randomness, so a fast digest is enough (no password hashing needed) and
lets every API request authenticate with one HGET.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import unicodedata
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from gateway.store import keys

KEY_PREFIX = "rgk_"


class Role(StrEnum):
    ADMIN = "admin"
    MARKETING = "marketing"
    RISK = "risk"
    #: Server-to-server: the landing application reporting conversions, nothing else.
    CONVERSION = "conversion"


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    role: Role
    created_at: float
    disabled: bool = False

    @property
    def actor(self) -> str:
        return f"apikey:{self.name}"

    def public(self) -> dict[str, Any]:
        return {**asdict(self), "role": self.role.value}


def _digest(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


#: How long a creation form's id is remembered: a resubmission later than this (a tab restored
#: the next week) creates a key again.
FORM_SECONDS = 86400


class AlreadyCreated(Exception):
    """The form was submitted before (a reload, a double click): its key exists already."""

    def __init__(self, key_id: str) -> None:
        super().__init__(f"this form created key {key_id} already")
        #: The key the first submission created ("" while that submission is still writing it).
        self.key_id = key_id


def new_form_id() -> str:
    return secrets.token_urlsafe(12)


class ApiKeyService:
    def __init__(self, store: Any) -> None:
        self._redis = store

    def create(self, name: str, role: Role | str, *, form_id: str = "") -> tuple[str, ApiKey]:
        """A new key and its secret, which is shown once and never kept. ``form_id`` names the
        form it was asked for with: the same form sent again creates nothing and raises
        AlreadyCreated (a browser reloading the page that showed the secret resends it)."""
        name = name.strip()
        if not name or len(name) > 100:
            raise ValueError("name must be 1-100 characters")
        if any(unicodedata.category(ch) == "Cc" for ch in name):
            raise ValueError("must not contain control characters")
        role = Role(role)
        once = ""
        if form_id:
            if len(form_id) > 32 or not form_id.replace("-", "").replace("_", "").isalnum():
                raise ValueError("the form is damaged; open the page again")
            once = keys.api_key_form(form_id)
            if not self._redis.set(once, "", nx=True, ex=FORM_SECONDS):
                raise AlreadyCreated((self._redis.get(once) or b"").decode())
        plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
        digest = _digest(plaintext)
        key = ApiKey(id=digest[:12], name=name, role=role, created_at=time.time())
        self._redis.hset(keys.API_KEYS, digest, json.dumps(asdict(key)))
        if once:
            self._redis.set(once, key.id, xx=True, keepttl=True)
        return plaintext, key

    def authenticate(self, plaintext: str) -> ApiKey | None:
        if not plaintext.startswith(KEY_PREFIX) or len(plaintext) > 100:
            return None
        digest = _digest(plaintext)
        raw = self._redis.hget(keys.API_KEYS, digest)
        if raw is None:
            return None
        key = _load(raw)
        # The lookup is by digest already; compare again in constant time for defence in depth.
        if key.disabled or not hmac.compare_digest(key.id, digest[:12]):
            return None
        return key

    def list(self) -> list[ApiKey]:
        return sorted(
            (_load(v) for v in self._redis.hvals(keys.API_KEYS)), key=lambda k: k.created_at
        )

    def disable(self, key_id: str) -> ApiKey:
        for digest, raw in self._redis.hgetall(keys.API_KEYS).items():
            key = _load(raw)
            if key.id == key_id:
                disabled = ApiKey(**{**asdict(key), "disabled": True})
                self._redis.hset(keys.API_KEYS, digest, json.dumps(asdict(disabled)))
                return disabled
        raise KeyError(key_id)


def _load(raw: bytes | str) -> ApiKey:
    data = json.loads(raw)
    data["role"] = Role(data["role"])
    return ApiKey(**data)
