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
from collections.abc import Callable
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
    """The form was submitted before (a reload, a double click): what it created exists already."""

    def __init__(self, created_id: str, actor: str = "", made: str = "") -> None:
        super().__init__(f"this form created {created_id} already")
        #: What the first submission created, an API key's or a webhook endpoint's id ("" while
        #: that submission is still writing it).
        self.created_id = created_id
        #: Who claimed the form ("" for a form claimed without saying, as API keys' are).
        self.actor = actor
        #: A fingerprint of what that submission made (see :func:`fingerprint`), or "".
        self.made = made


#: How often a resubmission looks whether the first submission finished (seconds).
FORM_POLL = 0.05


def fingerprint(secret: str) -> str:
    """A digest naming a stored secret without revealing it: a form remembers which secret it
    made, so its resubmission can tell whether that secret is still the current one."""
    return hashlib.sha256(secret.encode()).hexdigest()[:32]


def new_form_id() -> str:
    return secrets.token_urlsafe(12)


def _form_value(created_id: str, actor: str, made: str) -> str:
    # "<created id>|<fingerprint>|<actor>" (the actor last: it may hold anything); a form
    # claimed without an actor keeps the bare id, as API keys' forms always have.
    return f"{created_id}|{made}|{actor}" if actor else created_id


def _already(raw: bytes) -> AlreadyCreated:
    created_id, made, actor = [*raw.decode().split("|", 2), "", ""][:3]
    return AlreadyCreated(created_id, actor, made)


def claim_form(
    redis: Any,
    form_id: str,
    key_of: Callable[[str], str],
    *,
    actor: str = "",
    wait: float = 0.0,
) -> str:
    """Claim a console creation form's one-time id (under the store key ``key_of(form_id)``)
    for ``actor`` and return that key, or "" for no id. The same form sent again raises
    AlreadyCreated naming what the first sending created and who sent it (see
    :func:`settle_form`); while that sending is still at work (claimed, not settled) it is
    waited for up to ``wait`` seconds. A malformed id, ValueError."""
    if not form_id:
        return ""
    if len(form_id) > 32 or not form_id.replace("-", "").replace("_", "").isalnum():
        raise ValueError("the form is damaged; open the page again")
    once = key_of(form_id)
    # A double click's second request arrives while the first is still writing: polling the
    # store (rather than a blocking primitive) keeps this to plain keys, which any store has.
    # A claim given back meanwhile (the first sending failed) is taken again.
    deadline = time.monotonic() + wait
    while True:
        if redis.set(once, _form_value("", actor, ""), nx=True, ex=FORM_SECONDS):
            return once
        raw = redis.get(once)
        if raw is None:
            continue  # given back this instant: claim it
        found = _already(raw)
        # Waiting helps only the one who sent it first: what it made is theirs to see.
        if found.created_id or found.actor != actor or time.monotonic() >= deadline:
            raise found
        time.sleep(FORM_POLL)


def settle_form(redis: Any, once: str, created_id: str, *, actor: str = "", made: str = "") -> None:
    """Remember what the form claimed as ``once`` (by :func:`claim_form`, for ``actor``)
    created: its id and ``made``, a fingerprint of what it made."""
    if once:
        redis.set(once, _form_value(created_id, actor, made), xx=True, keepttl=True)


def release_form(redis: Any, once: str) -> None:
    """Give a claimed form back when its sending made nothing (it failed): sent again, it
    does what it asked for."""
    if once:
        redis.delete(once)


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
        once = claim_form(self._redis, form_id, keys.api_key_form)
        plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
        digest = _digest(plaintext)
        key = ApiKey(id=digest[:12], name=name, role=role, created_at=time.time())
        self._redis.hset(keys.API_KEYS, digest, json.dumps(asdict(key)))
        settle_form(self._redis, once, key.id)
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
