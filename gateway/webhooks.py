"""Webhooks for marketing systems: conversions, rewards and flags, signed and retried.

What happens is written to each campaign's outbox stream atomically with the change it reports
(``convert.lua``, ``settle_reward.lua``, ``raise_flag.lua``); this module delivers it, off the
click path and off the API's request path, from a periodic job (``gateway.jobs``):

- Each endpoint keeps a cursor per campaign into that campaign's outbox. A run reads what is new
  after the cursor, POSTs the events the endpoint subscribes to, and moves the cursor once an
  event is delivered or queued for a retry.
- A failed attempt (no answer within the timeout, or a status outside 2xx; redirects are not
  followed) is retried with exponential backoff and full jitter, up to ``max_attempts``; then
  the event is failed for good (a dead letter) and can be redelivered through the API. After a
  failure the run leaves that endpoint alone until the next run, so one dead receiver costs one
  timeout per run. A run serves the endpoints whose receivers answered first and the failing
  ones after, the least recently tried first, so however many receivers hang, the others are
  served each run and the failing ones take turns with what is left of the run's time.
- Delivery is at least once: a process dying between a receiver's 2xx and the cursor write sends
  that event again. Every event carries an id (``Refgate-Event-Id`` and ``id`` in the body) that
  is the same for every attempt and every endpoint, so receivers drop what they have seen.
- Bodies are signed like Stripe's: ``Refgate-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
  "<t>.<body>" under the endpoint's secret>``. Receivers recompute it and refuse old ``t``.
- Secrets rotate without a gap: a rotation issues a new secret and keeps the previous one for an
  overlap (a day by default) during which every body carries two ``v1`` signatures, the new
  secret's first; a receiver accepts any ``v1`` that matches, so it can switch to the new secret
  whenever it likes within the overlap.
- Every attempt is logged per endpoint (event, attempt, status code, error, latency, time).
- Each run trims every outbox to what some endpoint has not handled yet or the last hour.

Private addresses: an endpoint URL must be http(s) without user information; unless
``REFGATE_WEBHOOK_ALLOW_PRIVATE`` is set, IP literals must be public (IPv4 carried in IPv6 too:
mapped, 6to4, Teredo, NAT64) and host names are resolved at each delivery and refused when any
address is private, loopback, link-local or reserved (so a key holder cannot make refgate probe
the internal network). A host name is stored in its ASCII form (IDNA 2008 with UTS 46 mapping:
full-width letters folded, ``ß`` kept). It is looked up once per delivery, and the connection
goes to an address that lookup returned and the check passed, not to a second lookup's answer
(``Host``, TLS SNI and the certificate check still use the name): a name re-pointed between a
check and a connection (DNS rebinding) cannot reach the internal network.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import os
import random
import re
import secrets
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

import idna
import urllib3
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway import cursors
from gateway.apikeys import (
    AlreadyCreated,
    claim_form,
    fingerprint,
    release_form,
    settle_form,
)
from gateway.campaigns import SLUG_PATTERN, CampaignService, M, validate
from gateway.errors import ApiError
from gateway.store import keys
from gateway.store.scripts import script
from gateway.validation import Note

log = logging.getLogger(__name__)

EVENTS: tuple[str, ...] = (
    "conversion.created",
    "reward.credited",
    "reward.held",
    "reward.denied",
    "reward.clawed_back",
    "flag.raised",
)
EventName = Literal[
    "conversion.created",
    "reward.credited",
    "reward.held",
    "reward.denied",
    "reward.clawed_back",
    "flag.raised",
]
_STREAM_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
ENDPOINT_ID = re.compile(r"^wh_[0-9a-f]{16}$")
EVENT_ID = re.compile(r"^evt_[0-9a-f]{1,8}_[0-9]{1,20}-[0-9]{1,20}$")
MAX_URL_LENGTH = 2048
MAX_ENDPOINTS = 100
SIGNATURE_HEADER = "Refgate-Signature"
USER_AGENT = "refgate-webhooks/1"
#: Outbox entries read per campaign and endpoint in one go.
BATCH = 200
#: Delivery log entries kept per endpoint (approximately; Redis trims whole nodes).
LOG_LENGTH = 1000
#: Seconds of outbox kept even when every endpoint has handled it (or there is none).
OUTBOX_GRACE = 3600.0
#: How long a console form sent again waits for its first sending to finish (seconds): a double
#: click's two requests arrive milliseconds apart.
FORM_WAIT = 2.0
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


class WebhookCreate(BaseModel):
    """``POST /api/v1/webhooks``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    url: Annotated[str, Field(min_length=1, max_length=MAX_URL_LENGTH)]
    events: Annotated[list[EventName], Field(min_length=1, max_length=len(EVENTS))]
    campaigns: Annotated[
        list[Annotated[str, Field(pattern=SLUG_PATTERN)]] | None, Field(max_length=100)
    ] = None
    description: Note = ""


#: How long a rotated-out secret still signs, by default and at most (seconds).
ROTATION_OVERLAP = 86400
MAX_ROTATION_OVERLAP = 7 * 86400
#: Rotated-out secrets that may sign at once beside the current one: a second rotation within
#: an overlap (a retried request whose answer was lost) keeps the secret receivers still hold;
#: bounded so the signature header stays short.
MAX_PREVIOUS_SECRETS = 3


class WebhookRotate(BaseModel):
    """``POST /api/v1/webhooks/<id>/rotate-secret``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    #: Seconds the previous secret keeps signing beside the new one (0: stop at once).
    expire_previous_after: Annotated[int, Field(ge=0, le=MAX_ROTATION_OVERLAP)] = ROTATION_OVERLAP


class WebhookUpdate(BaseModel):
    """``PATCH /api/v1/webhooks/<id>``: any of these, at least one; what is not sent stays.
    ``url``, ``events`` and ``campaigns`` are checked as at registration; ``campaigns`` null
    means every campaign."""

    model_config = ConfigDict(extra="forbid", strict=True)

    disabled: bool | None = None
    url: Annotated[str | None, Field(min_length=1, max_length=MAX_URL_LENGTH)] = None
    events: Annotated[list[EventName] | None, Field(min_length=1, max_length=len(EVENTS))] = None
    campaigns: Annotated[
        list[Annotated[str, Field(pattern=SLUG_PATTERN)]] | None, Field(max_length=100)
    ] = None
    description: Note | None = None

    @field_validator("disabled", "url", "events", "description")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must not be null")
        return value

    @model_validator(mode="after")
    def _something(self) -> WebhookUpdate:
        if not self.model_fields_set:
            raise ValueError(f"send at least one of {', '.join(type(self).model_fields)}")
        return self


@dataclass(frozen=True)
class Endpoint:
    id: str
    url: str
    events: list[str]
    #: Campaign ids (and slugs, for display); empty: every campaign.
    campaign_ids: list[int]
    campaigns: list[str]
    secret: str
    description: str
    created_at: float
    created_by: str
    disabled: bool = False
    #: The secret a rotation replaced, still signing until ``previous_until`` (unix time).
    previous_secret: str = ""
    previous_until: float = 0.0
    rotated_at: float | None = None
    #: Secrets earlier rotations replaced whose overlaps still run, newest first, as
    #: ``[secret, until]``: rotating twice within an overlap must not drop the secret the
    #: receivers were given before the first rotation (they may not have switched yet).
    older_secrets: list[list[Any]] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        del data["secret"], data["campaign_ids"], data["previous_secret"], data["older_secrets"]
        return data

    def signing_secrets(self, now: float) -> list[str]:
        """The secrets a body sent at ``now`` is signed with, the current one first."""
        found = [self.secret]
        if self.previous_secret and now < self.previous_until:
            found.append(self.previous_secret)
        found.extend(secret for secret, until in self.older_secrets if now < until)
        return found

    def retired_after(self, now: float, overlap: int) -> tuple[str, float, list[list[Any]]]:
        """``previous_secret``, ``previous_until`` and ``older_secrets`` once a rotation at
        ``now`` replaces the current secret, which keeps signing for ``overlap`` seconds; an
        overlap of 0 stops every old secret at once (a leaked secret's rotation)."""
        if not overlap:
            return "", 0.0, []
        still = [[s, u] for s, u in self.older_secrets if now < u]
        if self.previous_secret and now < self.previous_until:
            still.insert(0, [self.previous_secret, self.previous_until])
        return self.secret, now + overlap, still[: MAX_PREVIOUS_SECRETS - 1]


@dataclass
class Pending:
    """An event on its way to one endpoint: the body is fixed at the first attempt."""

    event_id: str
    event: str
    campaign_id: int
    body: str
    attempts: int = 0
    status: str = "retrying"  # retrying | failed
    last_error: str = ""
    failed_at: float | None = None

    def dump(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def load(cls, raw: bytes | str) -> Pending:
        return cls(**json.loads(raw))


@dataclass(frozen=True)
class Attempt:
    status_code: int | None
    error: str
    latency_ms: float

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def sign(secret: str | Sequence[str], timestamp: int, body: bytes) -> str:
    """The ``Refgate-Signature`` header value for a body sent at ``timestamp``: one ``v1`` per
    secret (two while a rotation overlaps), in the order given."""
    secrets_ = [secret] if isinstance(secret, str) else list(secret)
    signed = f"{timestamp}.".encode() + body
    v1 = ",".join(
        "v1=" + hmac.new(s.encode(), signed, hashlib.sha256).hexdigest() for s in secrets_
    )
    return f"t={timestamp},{v1}"


def verify(secret: str, header: str, body: bytes, *, now: float, tolerance: float = 300) -> bool:
    """What a receiver does (tests use it): some ``v1`` matches under its secret and ``t`` is
    recent."""
    items = [item.split("=", 1) for item in header.split(",") if "=" in item]
    stamps = [value for name, value in items if name == "t"]
    try:
        timestamp = int(stamps[0])
    except (IndexError, ValueError):
        return False
    if len(stamps) != 1 or abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).rpartition("v1=")[2]
    # Every candidate is compared (no early exit): timing tells nothing about which matched.
    matches = [hmac.compare_digest(expected, value) for name, value in items if name == "v1"]
    return any(matches)


def backoff(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds before attempt ``attempt + 1``: exponential with full jitter (between half and
    all of ``base * 2**(attempt-1)``, at most ``cap``), so receivers coming back are not hit by
    every sender at once."""
    ceiling = min(cap, base * 2.0 ** (attempt - 1))
    return ceiling / 2 + rng.random() * ceiling / 2


def check_url(url: str, *, allow_private: bool) -> str | None:
    """Why an endpoint URL is refused, or None when it is acceptable."""
    if len(url) > MAX_URL_LENGTH:
        return f"longer than {MAX_URL_LENGTH} characters"
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F or ch == "\\" for ch in url):
        return "contains whitespace, control characters or a backslash"
    scheme, sep, _ = url.partition("://")
    if not sep or scheme.lower() not in {"http", "https"}:
        return "must be an absolute http:// or https:// URL"
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:
        return "is not a valid URL"
    if "@" in parts.netloc:
        return "must not contain user information (user@host)"
    if parts.fragment or url.endswith("#"):
        return "must not have a fragment"
    try:
        port = parts.port
    except ValueError:
        return "port must be a number between 1 and 65535"
    if port == 0:
        return "port must be a number between 1 and 65535"
    host = hostname or ""
    if not host:
        return "has no host"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return _check_name(host, allow_private=allow_private)
    if not allow_private and not _public(address):
        return (
            "is a private, loopback, link-local or reserved address "
            "(allowed only with REFGATE_WEBHOOK_ALLOW_PRIVATE)"
        )
    return None


#: IPv6 prefixes that carry an IPv4 address in their last 32 bits (RFC 6052 NAT64, well-known
#: and local-use): a gateway there forwards to that IPv4 address.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Global, and so is any IPv4 address it carries (mapped, 6to4, Teredo, NAT64)."""
    if not address.is_global:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        carried = [address.ipv4_mapped, address.sixtofour]
        if address.teredo is not None:
            carried += list(address.teredo)
        if any(address in network for network in _NAT64):
            carried.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        return all(v4.is_global for v4 in carried if v4 is not None)
    return True


def canonical_url(url: str) -> str:
    """``url`` (accepted by :func:`check_url`) with its host name in the ASCII form refgate both
    checks and connects to, and its scheme in lower case; IP literals are kept as written."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        host = idna.encode(host, uts46=True, transitional=False).decode("ascii")
    else:
        host = f"[{host}]" if ":" in host else host
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit((parts.scheme.lower(), netloc, parts.path, parts.query, ""))


def _check_name(host: str, *, allow_private: bool) -> str | None:
    if "%" in host:
        return "host must not be percent-encoded"
    try:
        name = idna.encode(host, uts46=True, transitional=False).decode("ascii").rstrip(".")
    except (idna.IDNAError, ValueError):
        return "host is not a valid domain name"
    labels = name.split(".")
    if any(not _LABEL.fullmatch(label) for label in labels):
        return "host is not a valid domain name"
    if labels[-1].isdigit() or labels[-1].startswith("0x"):
        return "host looks like an IP address in an unusual spelling; write it dotted"
    if not allow_private and (len(labels) < 2 or labels[-1] in {"localhost", "local", "internal"}):
        return (
            "host must be a public, fully qualified domain name "
            "(local names only with REFGATE_WEBHOOK_ALLOW_PRIVATE)"
        )
    return None


Resolver = Callable[[str, int], list[str]]


def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to for a TCP connection, in the resolver's order, each
    once."""
    found: list[str] = []
    for *_, sockaddr in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP):
        address = str(sockaddr[0])
        if address not in found:
            found.append(address)
    return found


def _private_address(addresses: Sequence[str]) -> str | None:
    """The first of ``addresses`` that is not public, or None."""
    for address in addresses:
        if not _public(ipaddress.ip_address(address.partition("%")[0])):
            return address
    return None


class WebhookService:
    def __init__(
        self,
        store: Any,
        campaigns: CampaignService,
        *,
        allow_private: bool = False,
        timeout: float = 5.0,
        max_attempts: int = 8,
        base_delay: float = 30.0,
        max_delay: float = 3600.0,
        run_budget: float = 20.0,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        resolver: Resolver = resolve,
        ca_certs: str | None = None,
    ) -> None:
        self._redis = store
        self._campaigns = campaigns
        self.allow_private = allow_private
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.run_budget = run_budget
        self._clock = clock
        self._rng = rng or random.Random()
        self._resolve = resolver
        self._owner = f"{os.uname().nodename}:{os.getpid()}:{secrets.token_hex(4)}"
        #: Endpoint id -> when its receiver last failed, while its last attempt failed (in this
        #: process: the jobs process delivers; another starts with every endpoint answered).
        self._failing: dict[str, float] = {}
        # urllib3, not raw sockets: pooled connections, TLS verification on by default (certifi
        # or the system store), timeouts. Retries are ours (backoff across runs), not urllib3's.
        self._http = urllib3.PoolManager(
            num_pools=MAX_ENDPOINTS,
            maxsize=1,
            retries=False,
            timeout=urllib3.Timeout(total=timeout, connect=min(timeout, 3.0)),
            ca_certs=ca_certs,  # None: certifi or the system store
        )

    # -- endpoints ---------------------------------------------------------------------------

    def create(
        self, data: dict[str, Any], actor: str, *, form_id: str = ""
    ) -> tuple[Endpoint, str]:
        """Register an endpoint; returns it and its signing secret (shown only this once).
        ``form_id`` names the console form it was asked for with: the same form sent again
        creates nothing and raises AlreadyCreated naming the endpoint and who sent the form
        (gateway.apikeys; see :meth:`made_by_form`)."""
        request = self._validated(WebhookCreate, data)
        url = canonical_url(request.url.strip())
        slugs = sorted(set(request.campaigns or ()))
        ids = self._campaign_ids(slugs)
        once = self._claim_form(form_id, actor)
        try:
            endpoint = self._register(request, url, ids, slugs, actor)
        except BaseException:
            release_form(self._redis, once)
            raise
        settle_form(self._redis, once, endpoint.id, actor=actor, made=fingerprint(endpoint.secret))
        return endpoint, endpoint.secret

    def _validated(self, model: type[M], data: dict[str, Any]) -> M:
        """``data`` validated by ``model``, its ``url`` (when sent) by :func:`check_url`:
        registering and changing an endpoint check alike. Every problem at once: a form does
        not learn of a bad URL only once its other fields are right."""
        raw_url = data.get("url")
        problem = None
        if isinstance(raw_url, str):  # blank too: " " passes the model's length check
            problem = check_url(raw_url.strip(), allow_private=self.allow_private)
        try:
            request = validate(model, data, "invalid webhook")
        except ApiError as exc:
            if problem is not None:
                exc.fields.setdefault("url", problem)
            raise
        if problem is not None:
            raise ApiError(400, "validation_failed", "invalid webhook", fields={"url": problem})
        return request

    def _campaign_ids(self, slugs: list[str]) -> list[int]:
        """The ids of the campaigns named; a 400 naming every unknown one at once."""
        ids: list[int] = []
        unknown = []
        for slug in slugs:
            campaign = self._campaigns.get(slug)
            if campaign is None:
                unknown.append(slug)
            else:
                ids.append(campaign.id)
        if unknown:  # every one named at once, not one a try
            named = ", ".join(repr(slug) for slug in unknown)
            problem = f"no campaign {named}" if len(unknown) == 1 else f"no campaigns {named}"
            raise ApiError(
                400, "validation_failed", "invalid webhook", fields={"campaigns": problem}
            )
        return ids

    def _start_from_now(self, endpoint_id: str, campaign_ids: Sequence[int]) -> None:
        """Set the endpoint's cursors in these campaigns' outboxes to their ends: it gets
        what happens there from now on."""
        wk = keys.webhook_keys(endpoint_id)
        for campaign_id in campaign_ids:
            last = self._redis.xrevrange(keys.campaign_keys(campaign_id).outbox, count=1)
            self._redis.hset(wk.cursors, str(campaign_id), last[0][0] if last else b"0-0")

    def _register(
        self, request: WebhookCreate, url: str, ids: list[int], slugs: list[str], actor: str
    ) -> Endpoint:
        if self._redis.hlen(keys.WEBHOOKS) >= MAX_ENDPOINTS:
            raise ApiError(409, "too_many_webhooks", f"at most {MAX_ENDPOINTS} endpoints")
        secret = "whsec_" + secrets.token_urlsafe(32)
        endpoint = Endpoint(
            id="wh_" + secrets.token_hex(8),
            url=url,
            events=sorted(set(request.events), key=EVENTS.index),
            campaign_ids=ids,
            campaigns=slugs,
            secret=secret,
            description=request.description,
            created_at=self._clock(),
            created_by=actor,
        )
        # Start after what is in the outboxes now: an endpoint gets what happens from now on.
        self._start_from_now(endpoint.id, ids or list(self._campaigns.iter_ids()))
        self._redis.hset(keys.WEBHOOKS, endpoint.id, json.dumps(asdict(endpoint)))
        return endpoint

    def rotate_secret(
        self, endpoint_id: str, data: dict[str, Any], actor: str, *, form_id: str = ""
    ) -> tuple[Endpoint, str]:
        """A new signing secret (returned only now); the previous one keeps signing beside it
        for ``expire_previous_after`` seconds so receivers can switch without a gap. ``form_id``
        names the console form it was asked for with: the same form sent again (a reload) raises
        AlreadyCreated rather than rotating again, which would drop the secret receivers use."""
        request = validate(WebhookRotate, data, "invalid rotation")
        self.require(endpoint_id)
        once = self._claim_form(form_id, actor)
        secret = "whsec_" + secrets.token_urlsafe(32)
        overlap = request.expire_previous_after

        def rotated(current: Endpoint) -> Endpoint:
            now = self._clock()
            previous, until, older = current.retired_after(now, overlap)
            return replace(
                current,
                secret=secret,
                previous_secret=previous,
                previous_until=until,
                older_secrets=older,
                rotated_at=now,
            )

        try:
            endpoint = self._change(endpoint_id, rotated)
        except BaseException:
            release_form(self._redis, once)
            raise
        settle_form(self._redis, once, endpoint.id, actor=actor, made=fingerprint(secret))
        log.info("webhook %s: secret rotated by %s", endpoint.id, actor)
        return endpoint, secret

    def _claim_form(self, form_id: str, actor: str) -> str:
        """Claim a console form's one-time id for ``actor`` (gateway.apikeys.claim_form),
        waiting up to FORM_WAIT for a sending of it still at work; a damaged id is a 400 like
        any bad field."""
        try:
            return claim_form(self._redis, form_id, keys.webhook_form, actor=actor, wait=FORM_WAIT)
        except ValueError as exc:
            raise ApiError(400, "validation_failed", str(exc), field="form_id") from None

    def made_by_form(self, sent: AlreadyCreated, actor: str) -> Endpoint | None:
        """The endpoint a console form's earlier sending registered or rotated (``sent``, what
        :meth:`create` or :meth:`rotate_secret` raised for the form sent again), when ``actor``
        sent that one too and the secret it made is still the endpoint's current one; None
        otherwise. Secrets are stored (deliveries are signed with them), so the same person's
        double click may be answered with what the first click made; anyone else's may not."""
        if not (sent.created_id and sent.made and sent.actor) or sent.actor != actor:
            return None
        endpoint = self.get(sent.created_id)
        if endpoint is None or not hmac.compare_digest(fingerprint(endpoint.secret), sent.made):
            return None
        return endpoint

    def update(self, endpoint_id: str, data: dict[str, Any], actor: str) -> Endpoint:
        """Change an endpoint: disable it (nothing is sent to it; what happens meanwhile waits
        in the outboxes, which keep an hour of it) or enable it again (delivery resumes where it
        stopped, with what is still kept); its URL, events, campaigns or description, checked
        as at registration. A new URL gets every delivery from now on, retries included; new
        events apply to what is not yet handled; a campaign it did not cover before is
        delivered from now on (not its outbox's past hour), one it no longer covers no more
        (events of it already waiting for a retry still go)."""
        request = self._validated(WebhookUpdate, data)
        sent = request.model_fields_set
        url = canonical_url(request.url.strip()) if request.url is not None else None
        slugs = sorted(set(request.campaigns or ()))
        ids = self._campaign_ids(slugs) if "campaigns" in sent else None

        def changed(current: Endpoint) -> Endpoint:
            found = current
            if request.disabled is not None:
                found = replace(found, disabled=request.disabled)
            if url is not None:
                found = replace(found, url=url)
            if request.events is not None:
                found = replace(found, events=sorted(set(request.events), key=EVENTS.index))
            if request.description is not None:
                found = replace(found, description=request.description)
            if ids is not None:
                # Cursors first: a run reading the new record finds them set. Only for the
                # campaigns it did not cover (a run advances the others' cursors meanwhile).
                before = set(current.campaign_ids or self._campaigns.iter_ids())
                after = set(ids or self._campaigns.iter_ids())
                self._start_from_now(current.id, sorted(after - before))
                found = replace(found, campaign_ids=ids, campaigns=slugs)
            return found

        endpoint = self._change(endpoint_id, changed)
        if "disabled" in sent:
            log.info(
                "webhook %s: %s by %s",
                endpoint.id,
                "disabled" if endpoint.disabled else "enabled",
                actor,
            )
        if sent - {"disabled"}:
            log.info("webhook %s: %s changed by %s", endpoint.id, ", ".join(sorted(sent)), actor)
        return endpoint

    def _change(self, endpoint_id: str, change: Callable[[Endpoint], Endpoint]) -> Endpoint:
        """Compare and set: two changes at once (two rotations) must not lose either."""
        swap = script("swap_field")
        while True:
            valid = ENDPOINT_ID.fullmatch(endpoint_id)
            raw = self._redis.hget(keys.WEBHOOKS, endpoint_id) if valid else None
            if raw is None:
                raise ApiError(404, "webhook_not_found", f"no webhook endpoint {endpoint_id!r}")
            endpoint = change(_load(raw))
            if swap(self._redis, [keys.WEBHOOKS], [endpoint.id, raw, json.dumps(asdict(endpoint))]):
                return endpoint

    def endpoints(self) -> list[Endpoint]:
        endpoints = [_load(raw) for raw in self._redis.hvals(keys.WEBHOOKS)]
        return sorted(endpoints, key=lambda e: (e.created_at, e.id))

    def get(self, endpoint_id: str) -> Endpoint | None:
        if not ENDPOINT_ID.fullmatch(endpoint_id):
            return None
        raw = self._redis.hget(keys.WEBHOOKS, endpoint_id)
        return None if raw is None else _load(raw)

    def require(self, endpoint_id: str) -> Endpoint:
        endpoint = self.get(endpoint_id)
        if endpoint is None:
            raise ApiError(404, "webhook_not_found", f"no webhook endpoint {endpoint_id!r}")
        return endpoint

    def delete(self, endpoint_id: str) -> None:
        endpoint = self.require(endpoint_id)
        self._redis.hdel(keys.WEBHOOKS, endpoint.id)
        wk = keys.webhook_keys(endpoint.id)
        for key in (wk.cursors, wk.pending, wk.retry, wk.failed, wk.deliveries):
            self._redis.delete(key)

    def summary(self, endpoint: Endpoint) -> dict[str, Any]:
        wk = keys.webhook_keys(endpoint.id)
        return {
            **endpoint.public(),
            "waiting": self._waiting(endpoint),
            "retrying": int(self._redis.zcard(wk.retry)),
            "failed": int(self._redis.zcard(wk.failed)),
        }

    def _waiting(self, endpoint: Endpoint) -> int:
        """Events for the endpoint in the outboxes after its cursors: not tried yet. A failing
        endpoint gets one new event tried a run (after its first failure a run leaves it), so
        behind a dead receiver these wait in the outbox, counted neither as retrying nor as
        failed. Counted up to BATCH (200) a campaign: enough to see a backlog grow."""
        wk = keys.webhook_keys(endpoint.id)
        campaign_ids = endpoint.campaign_ids or [c.id for c in self._campaigns.list()]
        waiting = 0
        for campaign_id in campaign_ids:
            cursor = (self._redis.hget(wk.cursors, str(campaign_id)) or b"0-0").decode()
            outbox = keys.campaign_keys(campaign_id).outbox
            for _, fields in self._redis.xrange(outbox, min=f"({cursor}", count=BATCH):
                waiting += fields[b"event"].decode() in endpoint.events
        return waiting

    # -- the delivery log and dead letters ---------------------------------------------------

    def deliveries(
        self, endpoint_id: str, *, limit: int = 100, before: str | None = None
    ) -> list[dict[str, Any]]:
        """The latest attempts, newest first; ``before``: those logged before that entry id."""
        return self._deliveries(self.require(endpoint_id), limit, before)[:limit]

    def _deliveries(
        self, endpoint: Endpoint, limit: int, before: str | None
    ) -> list[dict[str, Any]]:
        """Up to ``limit + 1`` attempts, each with its log entry id (``id``)."""
        wk = keys.webhook_keys(endpoint.id)
        rows = []
        newest = f"({before}" if before else "+"
        for entry_id, raw in self._redis.xrevrange(wk.deliveries, newest, "-", count=limit + 1):
            data = {k.decode(): v.decode() for k, v in raw.items()}
            rows.append(
                {
                    "id": entry_id.decode(),
                    "event_id": data["event_id"],
                    "event": data["event"],
                    "attempt": int(data["attempt"]),
                    "outcome": data["outcome"],
                    "status_code": int(data["status_code"]) if data["status_code"] else None,
                    "error": data["error"],
                    "latency_ms": float(data["latency_ms"]),
                    "at": float(data["at"]),
                }
            )
        return rows

    def failed(self, endpoint_id: str, *, limit: int = 100) -> list[dict[str, Any]]:
        """Events that ran out of attempts, newest first."""
        rows, _ = self._failed(self.require(endpoint_id), limit, None)
        return rows

    def _failed(
        self, endpoint: Endpoint, limit: int, after: tuple[float, str] | None
    ) -> tuple[list[dict[str, Any]], list[tuple[str, float]]]:
        """Up to ``limit`` failed events after ``after`` (keyset: when it failed, its id), and
        the ids and scores of the next ``limit + 1`` in the index (the last says whether there
        are more; one whose record is gone meanwhile has no row)."""
        wk = keys.webhook_keys(endpoint.id)
        window, _ = cursors.zrevpage(self._redis, wk.failed, limit=limit, after=after)
        ids = [event_id for event_id, _ in window[:limit]]
        rows = []
        for raw in self._redis.hmget(wk.pending, ids) if ids else []:
            if raw is None:
                continue
            item = Pending.load(raw)
            rows.append(
                {
                    "event_id": item.event_id,
                    "event": item.event,
                    "attempts": item.attempts,
                    "error": item.last_error,
                    "failed_at": item.failed_at,
                }
            )
        return rows, window

    def log_page(
        self, endpoint_id: str, *, limit: int = 100, cursor: str | None = None
    ) -> dict[str, Any]:
        """A page of the delivery log and one of the failed events, each newest first and up
        to ``limit`` long, and ``next_cursor`` continuing both after this page (a list already
        at its end stays empty), or None when neither has more. Keyset paging: attempts logged
        and events failing meanwhile come before the page and never shift it."""
        endpoint = self.require(endpoint_id)
        scope = {"e": endpoint.id}
        before: str | None = None
        after: tuple[float, str] | None = None
        log_done = failed_done = False
        if cursor is not None:
            position = cursors.decode(
                cursor,
                "webhook-log",
                scope,
                "a cursor of another listing: page with the endpoint it was given for",
            )
            if len(position) != 2 or not isinstance(position[0], str):
                raise cursors.malformed()
            if position[0]:
                if not _STREAM_ID.fullmatch(position[0]):
                    raise cursors.malformed()
                before = position[0]
            else:
                log_done = True
            if not isinstance(position[1], list) or len(position[1]) not in (0, 2):
                raise cursors.malformed()
            if position[1]:
                after = (cursors.number(position[1][0]), cursors.text(position[1][1]))
            else:
                failed_done = True
        logged = [] if log_done else self._deliveries(endpoint, limit, before)
        failed, window = ([], []) if failed_done else self._failed(endpoint, limit, after)
        more_log = logged[limit - 1]["id"] if len(logged) > limit else ""
        more_failed = list(window[limit - 1][::-1]) if len(window) > limit else []
        next_cursor = None
        if more_log or more_failed:
            next_cursor = cursors.encode("webhook-log", scope, [more_log, more_failed])
        return {
            "deliveries": logged[:limit],
            "failed": failed,
            "next_cursor": next_cursor,
        }

    def redeliver(self, endpoint_id: str, event_id: str, now: float | None = None) -> None:
        """Put a failed event back in line: tried at the next run, with fresh attempts."""
        wk = keys.webhook_keys(self.require(endpoint_id).id)
        raw = self._redis.hget(wk.pending, event_id) if EVENT_ID.fullmatch(event_id) else None
        item = Pending.load(raw) if raw is not None else None
        if item is None or item.status != "failed":
            raise ApiError(
                404, "delivery_not_found", f"no failed delivery of {event_id!r} to this endpoint"
            )
        item.status, item.attempts, item.failed_at = "retrying", 0, None
        self._redis.hset(wk.pending, event_id, item.dump())
        self._redis.zadd(wk.retry, {event_id: self._clock() if now is None else now})
        self._redis.zrem(wk.failed, event_id)

    # -- delivery (the job) ------------------------------------------------------------------

    def run(self, now: float) -> int:
        """Deliver what is due to every endpoint; returns how many events were delivered."""
        lease = script("lease")
        hold_ms = int((self.timeout + 5) * 1000)
        if not lease(self._redis, [keys.WEBHOOK_LEASE], [self._owner, hold_ms]):
            return 0  # another process is delivering (a run outlived its scheduler lock)
        started = time.monotonic()
        delivered = 0
        slugs = {c.id: c.slug for c in self._campaigns.list()}

        def renew() -> bool:
            if time.monotonic() - started > self.run_budget:
                return False
            return bool(lease(self._redis, [keys.WEBHOOK_LEASE], [self._owner, hold_ms]))

        try:
            endpoints = self.endpoints()
            for endpoint in self._turns(endpoints):
                delivered += self._run_endpoint(endpoint, slugs, now, renew)
            self._trim(slugs, endpoints, now)
        finally:
            lease(self._redis, [keys.WEBHOOK_LEASE], [self._owner, 0])
        return delivered

    def _turns(self, endpoints: list[Endpoint]) -> list[Endpoint]:
        """The order a run serves endpoints in: those whose receivers answered (or were not
        tried yet) first, then the failing ones, the least recently tried first. A dead
        receiver costs a timeout a try: served first, a few of them would spend the run's time
        every run and starve the endpoints after them."""
        failing = self._failing
        live = [e for e in endpoints if not e.disabled]
        for gone in set(failing) - {e.id for e in live}:
            del failing[gone]
        answered = [e for e in live if e.id not in failing]
        return answered + sorted((e for e in live if e.id in failing), key=lambda e: failing[e.id])

    def _trim(self, slugs: dict[int, str], endpoints: list[Endpoint], now: float) -> None:
        """Drop outbox entries every endpoint has handled and older than OUTBOX_GRACE (a new
        endpoint starts at the end of the outbox, failed events keep their own copy), so the
        outbox holds about an hour of events instead of growing with the campaign."""
        floor = (max(int((now - OUTBOX_GRACE) * 1000), 0), 0)
        for campaign_id in slugs:
            minid = floor
            for endpoint in endpoints:
                # A disabled endpoint holds nothing back: its outboxes keep their hour.
                if endpoint.disabled or (
                    endpoint.campaign_ids and campaign_id not in endpoint.campaign_ids
                ):
                    continue
                wk = keys.webhook_keys(endpoint.id)
                raw = self._redis.hget(wk.cursors, str(campaign_id)) or b"0-0"
                ms, _, seq = raw.decode().partition("-")
                minid = min(minid, (int(ms), int(seq or 0)))
            if minid > (0, 0):
                outbox = keys.campaign_keys(campaign_id).outbox
                self._redis.xtrim(outbox, minid=f"{minid[0]}-{minid[1]}", approximate=False)

    def _run_endpoint(
        self, endpoint: Endpoint, slugs: dict[int, str], now: float, renew: Callable[[], bool]
    ) -> int:
        wk = keys.webhook_keys(endpoint.id)
        delivered = 0
        # Retries that are due first, oldest due first.
        for raw_id in self._redis.zrangebyscore(wk.retry, "-inf", now, start=0, num=BATCH):
            raw = self._redis.hget(wk.pending, raw_id)
            if raw is None:
                self._redis.zrem(wk.retry, raw_id)
                continue
            if not renew():
                return delivered
            if not self._attempt(endpoint, wk, Pending.load(raw), now):
                return delivered  # the endpoint is failing: leave it until the next run
            delivered += 1
        # Then what is new in each campaign's outbox.
        campaign_ids = endpoint.campaign_ids or sorted(slugs)
        for campaign_id in campaign_ids:
            slug = slugs.get(campaign_id)
            if slug is None:
                continue
            outbox = keys.campaign_keys(campaign_id).outbox
            cursor = (self._redis.hget(wk.cursors, str(campaign_id)) or b"0-0").decode()
            for stream_id, fields in self._redis.xrange(outbox, min=f"({cursor}", count=BATCH):
                event = fields[b"event"].decode()
                ok = True
                if event in endpoint.events:
                    if not renew():
                        return delivered
                    item = _pending(campaign_id, slug, stream_id.decode(), event, fields)
                    ok = self._attempt(endpoint, wk, item, now)
                    delivered += ok
                self._redis.hset(wk.cursors, str(campaign_id), stream_id)
                if not ok:
                    return delivered
        return delivered

    def _attempt(self, endpoint: Endpoint, wk: keys.WebhookKeys, item: Pending, now: float) -> bool:
        item.attempts += 1
        result = self._post(endpoint, item)
        if result.ok:
            self._failing.pop(endpoint.id, None)
        else:
            self._failing[endpoint.id] = time.monotonic()
        if result.ok:
            outcome = "delivered"
        elif item.attempts >= self.max_attempts:
            outcome = "failed"
        else:
            outcome = "retrying"
        self._redis.xadd(
            wk.deliveries,
            {
                "event_id": item.event_id,
                "event": item.event,
                "attempt": item.attempts,
                "outcome": outcome,
                "status_code": result.status_code or "",
                "error": result.error,
                "latency_ms": round(result.latency_ms, 2),
                # When this attempt was made: a run's attempts follow one another for seconds.
                "at": repr(self._clock()),
            },
            maxlen=LOG_LENGTH,
            approximate=True,
        )
        if outcome == "delivered":
            self._redis.hdel(wk.pending, item.event_id)
            self._redis.zrem(wk.retry, item.event_id)
            return True
        item.last_error = result.error or f"HTTP {result.status_code}"
        if outcome == "failed":
            item.status, item.failed_at = "failed", now
            self._redis.hset(wk.pending, item.event_id, item.dump())
            self._redis.zadd(wk.failed, {item.event_id: now})
            self._redis.zrem(wk.retry, item.event_id)
            log.warning("webhook %s: %s failed for good", endpoint.id, item.event_id)
        else:
            due = now + backoff(item.attempts, self.base_delay, self.max_delay, self._rng)
            self._redis.hset(wk.pending, item.event_id, item.dump())
            self._redis.zadd(wk.retry, {item.event_id: due})
        return False

    def _post(self, endpoint: Endpoint, item: Pending) -> Attempt:
        body = item.body.encode()
        now = self._clock()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(endpoint.signing_secrets(now), int(now), body),
            "Refgate-Event-Id": item.event_id,
            "Refgate-Event-Type": item.event,
            "Refgate-Delivery-Attempt": str(item.attempts),
            # Here, not on the pool: urllib3 drops a pool's headers when a request has its own.
            "User-Agent": USER_AGENT,
        }
        started = time.perf_counter()
        try:
            parts = urlsplit(canonical_url(endpoint.url))
            host = parts.hostname or ""
            port = parts.port or (443 if parts.scheme == "https" else 80)
            # Looked up once: the check and the connection use the same answer.
            addresses = self._resolve(host, port)
            if not self.allow_private:
                private = _private_address(addresses)
                if private is not None:
                    return Attempt(None, f"refused: the host resolves to {private}", 0.0)
            target = urlunsplit(("", "", parts.path or "/", parts.query, ""))
            headers["Host"] = parts.netloc
            response = self._send(parts.scheme, host, port, addresses, target, headers, body)
            try:
                response.read(4096, decode_content=False)  # a little of the answer, never all
            finally:
                response.close()
            status = response.status
            error = "" if 200 <= status < 300 else f"HTTP {status}"
            return Attempt(status, error, (time.perf_counter() - started) * 1000)
        except (urllib3.exceptions.HTTPError, OSError, ValueError, idna.IDNAError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
            return Attempt(None, error, (time.perf_counter() - started) * 1000)

    def _send(
        self,
        scheme: str,
        host: str,
        port: int,
        addresses: Sequence[str],
        target: str,
        headers: dict[str, str],
        body: bytes,
    ) -> urllib3.BaseHTTPResponse:
        """POST to the first of ``addresses`` that accepts a connection (as a resolving client
        tries them in turn). The pool is the address's, with TLS's SNI and certificate check
        bound to the name ``host``."""
        tls = {"server_hostname": host, "assert_hostname": host} if scheme == "https" else None
        if not addresses:
            raise OSError(f"{host} resolves to no address")
        for address in addresses:
            pool = self._http.connection_from_host(
                address.partition("%")[0], port, scheme, pool_kwargs=tls
            )
            try:
                return pool.urlopen(
                    "POST",
                    target,
                    body=body,
                    headers=headers,
                    redirect=False,
                    preload_content=False,
                    assert_same_host=False,
                    release_conn=True,
                )
            except urllib3.exceptions.ConnectTimeoutError as exc:  # refused or timed out: next
                failure = exc
        raise failure


def _pending(
    campaign_id: int, slug: str, stream_id: str, event: str, fields: dict[bytes, bytes]
) -> Pending:
    event_id = f"evt_{campaign_id:x}_{stream_id}"
    data = json.loads(fields[b"data"])
    created = int(stream_id.partition("-")[0]) / 1000
    body = json.dumps(
        {"id": event_id, "type": event, "created": created, "campaign": slug, "data": data},
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return Pending(event_id=event_id, event=event, campaign_id=campaign_id, body=body)


def _load(raw: bytes | str) -> Endpoint:
    return Endpoint(**json.loads(raw))
