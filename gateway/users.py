"""Staff accounts of the console: an email, a role, a password hash, a language.

Records live in one Redis hash (``keys.STAFF_USERS``), email -> JSON. Passwords are hashed with
werkzeug's ``generate_password_hash`` (scrypt). ``session_version`` is part of the session's user
id (see gateway.console), so disabling an account or resetting its password ends its sessions.
Each session is also kept in the store (``keys.console_session``, 12 hours), which signing out
deletes: a copy of the cookie does not outlive the sign-out.

Failed logins are counted per (account, network prefix) pair, per network prefix (a salted hash
of it) and per account, in counters that expire with the lockout window. After ``PAIR_LIMIT``
failures the account refuses logins from that prefix only, after ``NETWORK_LIMIT`` the whole
prefix refuses every account, until the window passes. Locking the account itself after a few
failures let anyone who knew a staff member's email keep them out for good (five wrong passwords
every window, from anywhere); the owner on another network now still gets in. The account-wide
``ACCOUNT_LIMIT`` is far higher: it is there against guessing spread over many networks, which the
pair and prefix limits alone would not slow down.
"""

from __future__ import annotations

import functools
import json
import re
import secrets
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

from werkzeug.security import check_password_hash, generate_password_hash

from gateway.apikeys import Role
from gateway.store import keys

#: Roles a person may have in the console (the conversion role is for servers only).
STAFF_ROLES: tuple[str, ...] = (Role.ADMIN.value, Role.MARKETING.value, Role.RISK.value)
LOCALES: tuple[str, ...] = ("", "zh_Hans_CN", "zh_Hant_TW", "en")
EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 200

PAIR_LIMIT = 5
NETWORK_LIMIT = 20
ACCOUNT_LIMIT = 50
LOCKOUT_SECONDS = 15 * 60


@functools.cache
def _dummy_hash() -> str:
    """A hash to check against when the account does not exist, so timing does not tell. Made
    on first use: scrypt takes a good part of a second, which every command (and every worker
    start) paid at import."""
    return generate_password_hash("refgate-no-such-user")


class UserError(ValueError):
    """Bad input for an account; ``field`` names the form field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class StaffUser:
    email: str
    role: str
    password_hash: str
    created_at: float
    disabled: bool = False
    #: "" follows the browser's Accept-Language; otherwise a catalogue locale.
    locale: str = ""
    session_version: int = 1

    @property
    def actor(self) -> str:
        return f"user:{self.email}"

    # flask-login's user protocol.
    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return not self.disabled

    def get_id(self) -> str:
        return f"{self.email}|{self.session_version}"

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        del data["password_hash"]
        return data


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if not EMAIL.fullmatch(email):
        raise UserError("email", "not an email address")
    return email


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise UserError("password", f"a password has {MIN_PASSWORD}-{MAX_PASSWORD} characters")
    return password


def check_role(role: str) -> str:
    if role not in STAFF_ROLES:
        raise UserError("role", f"one of {', '.join(STAFF_ROLES)}")
    return role


#: How long a console session lasts after signing in (a working day; as long as its forms).
SESSION_SECONDS = 12 * 3600


class UserService:
    def __init__(self, store: Any) -> None:
        self._redis = store

    # Sessions are kept in the store as well as in the signed cookie: a cookie alone stays
    # valid until its signature's age runs out, signing out or not, so a copy taken from a
    # shared computer or a log would outlive the sign-out it was meant to end.

    def open_session(self, email: str) -> str:
        """A new session for a signed-in account; its id goes in the session cookie."""
        session_id = secrets.token_urlsafe(24)
        self._redis.set(keys.console_session(session_id), email, ex=SESSION_SECONDS)
        return session_id

    def session_open(self, session_id: object, email: str) -> bool:
        """Is ``session_id`` a session of ``email`` that has not signed out or expired?"""
        if not isinstance(session_id, str) or not 0 < len(session_id) <= 64:
            return False
        found = self._redis.get(keys.console_session(session_id))
        return found is not None and found.decode() == email

    def close_session(self, session_id: object) -> None:
        if isinstance(session_id, str) and 0 < len(session_id) <= 64:
            self._redis.delete(keys.console_session(session_id))

    def add(self, email: str, role: str, password: str) -> StaffUser:
        email = normalise_email(email)
        user = StaffUser(
            email=email,
            role=check_role(role),
            password_hash=generate_password_hash(check_password(password)),
            created_at=time.time(),
        )
        if not self._redis.hsetnx(keys.STAFF_USERS, email, _dump(user)):
            raise UserError("email", f"{email} already has an account")
        return user

    def get(self, email: str) -> StaffUser | None:
        raw = self._redis.hget(keys.STAFF_USERS, email.strip().lower())
        return _load(raw) if raw else None

    def require(self, email: str) -> StaffUser:
        user = self.get(email)
        if user is None:
            raise KeyError(email)
        return user

    def list(self) -> list[StaffUser]:
        return sorted(
            (_load(v) for v in self._redis.hvals(keys.STAFF_USERS)), key=lambda u: u.email
        )

    def from_session(self, session_id: str) -> StaffUser | None:
        email, _, version = session_id.rpartition("|")
        user = self.get(email) if email else None
        if user is None or user.disabled or str(user.session_version) != version:
            return None
        return user

    def verify(self, email: str, password: str) -> StaffUser | None:
        """The active account when the password is right; None otherwise (same work either way)."""
        user = self.get(email)
        if user is None or len(password) > MAX_PASSWORD:
            check_password_hash(_dummy_hash(), password[:MAX_PASSWORD])
            return None
        if not check_password_hash(user.password_hash, password) or user.disabled:
            return None
        return user

    def set_disabled(self, email: str, disabled: bool) -> StaffUser:
        user = self.require(email)
        return self._put(replace(user, disabled=disabled, session_version=user.session_version + 1))

    def reset_password(self, email: str, password: str) -> StaffUser:
        user = self.require(email)
        return self._put(
            replace(
                user,
                password_hash=generate_password_hash(check_password(password)),
                session_version=user.session_version + 1,
            )
        )

    def set_role(self, email: str, role: str) -> StaffUser:
        user = self.require(email)
        return self._put(
            replace(user, role=check_role(role), session_version=user.session_version + 1)
        )

    def set_locale(self, email: str, locale: str) -> StaffUser:
        if locale not in LOCALES:
            raise UserError("locale", "unknown language")
        return self._put(replace(self.require(email), locale=locale))

    def _put(self, user: StaffUser) -> StaffUser:
        self._redis.hset(keys.STAFF_USERS, user.email, _dump(user))
        return user


class LoginThrottle:
    """Failed-login counters per (account, network) pair, per network and per account (see the
    module docstring). Each is its own key: on a cluster they sit in different slots, so they
    are read and written one at a time, never in one transaction."""

    def __init__(self, store: Any) -> None:
        self._redis = store

    def _keys(self, email: str, network: str) -> dict[str, str]:
        """The counters by the lockout they decide, in the order they are checked: the pair
        first, so an attacker's own network is told about its own lockout."""
        email = email.strip().lower()
        return {
            "pair": keys.login_failures("p", f"{network}:{email}"),
            "network": keys.login_failures("n", network),
            "account": keys.login_failures("a", email),
        }

    def locked(self, email: str, network: str) -> str | None:
        """ "pair", "network" or "account" when logins are refused, else None."""
        for locked, key in self._keys(email, network).items():
            if int(self._redis.get(key) or 0) >= _LIMITS[locked]:
                return locked
        return None

    def failed(self, email: str, network: str) -> None:
        for key in self._keys(email, network).values():
            pipe = self._redis.pipeline(transaction=True)
            pipe.incr(key)
            pipe.expire(key, LOCKOUT_SECONDS)
            pipe.execute()

    def first_refusal(self, locked: str, email: str, network: str) -> bool:
        """True for the first login refused by a lockout (``locked``: "pair", "network" or
        "account"), once per lockout window: the audit log records that one. Recorded each
        time, refused attempts (which cost the sender nothing) filled the capped audit log and
        pushed the staff's actions out of it."""
        email = email.strip().lower()
        subject = {"pair": f"{network}:{email}", "network": network, "account": email}[locked]
        once = keys.login_failures(f"refused-{locked}", subject)
        return bool(self._redis.set(once, 1, nx=True, ex=LOCKOUT_SECONDS))

    def succeeded(self, email: str, network: str) -> None:
        """Forget the pair's failures (most likely the owner's own typos). The account-wide
        count stays until its window passes: an attacker who spreads guesses over many networks
        must not have it wiped each time the owner signs in."""
        self._redis.delete(self._keys(email, network)["pair"])


#: The failures at which each counter of LoginThrottle refuses logins.
_LIMITS = {"pair": PAIR_LIMIT, "network": NETWORK_LIMIT, "account": ACCOUNT_LIMIT}


def _dump(user: StaffUser) -> str:
    return json.dumps(asdict(user))


def _load(raw: bytes | str) -> StaffUser:
    return StaffUser(**json.loads(raw))
