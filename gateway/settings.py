"""Settings read from the environment once, at start, and validated with clear errors.

Every setting has one name (the environment variable) and one place where it is parsed, so a
misconfigured deployment fails at boot with a message naming the variable, never at the first
click.
"""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

#: A dev secret is generated into the data dir on first run; production must set this.
DEV_SECRET_FILE = "dev-secret-key"  # noqa: S105 - a file name, not a secret
MIN_SECRET_BYTES = 16


class SettingsError(ValueError):
    """A setting is missing or malformed; ``name`` is the environment variable to fix."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.name = name
        self.problem = problem


#: Admission defaults. A staff page loads its stylesheet, script and images at once (four
#: requests from one browser): at rest they must all be admitted, so "other" requests get four;
#: clicks two more, so that the API and console are shed first under load.
DEFAULT_MAX_IN_FLIGHT = 6
DEFAULT_MAX_IN_FLIGHT_OTHER = 4


@dataclass(frozen=True)
class Settings:
    secret_keys: tuple[bytes, ...]
    data_dir: Path
    public_url: str
    redis_url: str | None = None
    trusted_proxies: int = 0
    production: bool = False
    #: Key for salted IP hashes. Kept apart from the signing keys so rotating those does not
    #: reset every network feature; derived from the oldest signing key when not set.
    ip_hash_key: bytes = b""
    #: When non-empty, campaign destinations must be one of these hosts or a subdomain of one.
    destination_hosts: tuple[str, ...] = ()
    #: Seconds a click waits for the store before it is served without history.
    store_timeout: float = 0.25
    #: Where poster fonts are looked for; empty means the system's font directories.
    font_dirs: tuple[Path, ...] = ()
    #: Admission control, per worker process: requests handled at once. Clicks are admitted
    #: while fewer than ``max_in_flight`` requests are in flight, everything else (API, console,
    #: media) while fewer than ``max_in_flight_other``: those are shed first. Beyond: 503 at once.
    max_in_flight: int = 6
    max_in_flight_other: int = 4
    #: Seconds a click may have waited in the worker's queue (gunicorn's threaded worker) and
    #: still be served; other requests get half. Longer waits are shed with 503 at once.
    max_queue_wait: float = 0.03
    #: Requests waiting for a thread in a worker beyond which it refuses new ones at the door,
    #: unparsed (gateway/worker.py); 0 turns that off.
    door_queue: int = 4
    #: Seconds a Python thread runs before another thread of the worker may take the GIL
    #: (sys.setswitchinterval; Python's own default is 5 ms). A click whose store answer has
    #: arrived waits that long behind a busy thread, so under load a shorter one trims the tail.
    gil_switch_interval: float = 0.005
    #: Whether each served app runs the periodic jobs (flagger, tree watch, webhooks) in a
    #: thread of its own. ``refgate serve`` turns this off in its workers and runs the jobs in
    #: one process of their own (``refgate jobs``): analysis then never holds a serving
    #: worker's GIL, and the OS can put it behind the clicks.
    jobs_in_workers: bool = True
    #: The niceness ``refgate jobs`` runs at (0-19): at a peak the clicks get the CPU first and
    #: the jobs catch up after; a saturated machine delays flags, never clicks.
    jobs_nice: int = 10
    #: Flood limits, clicks per minute per campaign: from one network prefix (/24, /48) and on
    #: one sharer's link. Counted by click.lua in the click's own round trip; 0 turns one off.
    rate_limit_prefix: int = 1200
    rate_limit_token: int = 600
    #: One JSON log line per click (id, decision, outcome, platform) on logger refgate.clicks.
    click_log: bool = False
    #: Whether webhook endpoints may be private, loopback or link-local addresses (off: a key
    #: holder could otherwise make refgate probe the internal network).
    webhook_allow_private: bool = False
    #: Seconds one webhook delivery may take (connect and answer) before it counts as failed.
    webhook_timeout: float = 5.0
    #: Days a click's record is kept: a conversion must arrive within them (the attribution
    #: window). Records are most of what a peak leaves in the store (about 480 bytes a click).
    attribution_days: int = 30
    #: Days the campaign's event stream keeps a click (flagging, export, training from the
    #: risk team's decisions read it): about 850 bytes a click. At least the attribution window.
    event_retention_days: int = 90
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def embedded_store(self) -> bool:
        return self.redis_url is None

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, default_data_dir: Path | None = None
    ) -> Settings:
        env = os.environ if environ is None else environ
        production = _parse_bool(env, "REFGATE_PRODUCTION", default=False)
        data_dir = Path(
            env.get("REFGATE_DATA_DIR") or default_data_dir or Path.cwd() / "refgate-data"
        ).expanduser()
        try:
            # Owner only, when created here: the store's AOF (webhook secrets, password hashes),
            # the spool (click events) and the dev secret are nobody else's to read.
            data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise SettingsError("REFGATE_DATA_DIR", f"cannot create {data_dir}: {exc}") from exc
        # The embedded store, the spool, the metrics and the dev secret are all written here:
        # an unwritable directory (a volume owned by root mounted into the container, which runs
        # as another user) must be one clear line at boot, not a traceback from whichever of
        # them comes first, or a spool that cannot take events in an outage.
        try:
            with tempfile.TemporaryFile(dir=data_dir):
                pass
        except OSError as exc:
            raise SettingsError(
                "REFGATE_DATA_DIR",
                f"cannot write in {data_dir} as uid {os.geteuid()}: {exc.strerror} "
                "(make it writable by that user, e.g. chown the volume)",
            ) from exc

        raw_keys = env.get("REFGATE_SECRET_KEYS", "").strip()
        if raw_keys:
            keys = _parse_secret_keys(raw_keys)
        elif production:
            raise SettingsError(
                "REFGATE_SECRET_KEYS",
                "required when REFGATE_PRODUCTION is set (comma-separated, newest first)",
            )
        else:
            keys = (_dev_secret(data_dir),)

        # Read by gateway.logs (before any app exists); checked here with the rest, so a typo
        # is a configuration error rather than JSON logs nobody asked for.
        log_format = env.get("REFGATE_LOG_FORMAT", "json").strip().lower()
        if log_format not in {"json", "text"}:
            raise SettingsError("REFGATE_LOG_FORMAT", f"json or text, got {log_format!r}")

        redis_url = env.get("REDIS_URL", "").strip() or None
        if redis_url is not None:
            scheme = urlsplit(redis_url).scheme
            if scheme not in {"redis", "rediss", "unix", "redis+cluster"}:
                raise SettingsError(
                    "REDIS_URL",
                    f"unsupported scheme {scheme!r} (redis://, rediss://, unix://, redis+cluster://)",
                )

        public_url = env.get("REFGATE_PUBLIC_URL", "").strip()
        if not public_url and production:
            # Said as such: the https check below would blame a default nobody wrote.
            raise SettingsError(
                "REFGATE_PUBLIC_URL",
                "required when REFGATE_PRODUCTION is set: the https:// address that share "
                "links, QR codes and posters point at",
            )
        public_url = public_url or "http://127.0.0.1:8080"
        parts = urlsplit(public_url)
        if (
            parts.scheme not in {"http", "https"}
            or not parts.netloc
            or parts.query
            or parts.fragment
        ):
            raise SettingsError(
                "REFGATE_PUBLIC_URL", f"must be an http(s) base URL, got {public_url!r}"
            )
        if production and parts.scheme != "https":
            raise SettingsError("REFGATE_PUBLIC_URL", "must be https:// in production")

        ip_key_raw = env.get("REFGATE_IP_HASH_KEY", "").strip()
        if ip_key_raw and len(ip_key_raw.encode()) < MIN_SECRET_BYTES:
            # Salted hashes stand in for addresses (raw IPs are never kept): with a guessable
            # key, hashing every IPv4 address under it gives them back.
            raise SettingsError(
                "REFGATE_IP_HASH_KEY",
                f"shorter than {MIN_SECRET_BYTES} characters; generate one with: "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'",
            )
        ip_hash_key = ip_key_raw.encode() if ip_key_raw else b"refgate.ip-hash:" + keys[-1]

        hosts = tuple(
            h.strip().lower().rstrip(".")
            for h in env.get("REFGATE_DESTINATION_HOSTS", "").split(",")
            if h.strip()
        )
        font_dirs = tuple(
            Path(d.strip()).expanduser()
            for d in env.get("REFGATE_FONT_DIRS", "").split(os.pathsep)
            if d.strip()
        )
        missing = [str(d) for d in font_dirs if not d.is_dir()]
        if missing:
            raise SettingsError("REFGATE_FONT_DIRS", f"not a directory: {missing[0]}")
        max_in_flight = _parse_int(
            env, "REFGATE_MAX_IN_FLIGHT", DEFAULT_MAX_IN_FLIGHT, minimum=1, maximum=1024
        )
        max_other = _parse_int(
            env,
            "REFGATE_MAX_IN_FLIGHT_OTHER",
            min(DEFAULT_MAX_IN_FLIGHT_OTHER, max_in_flight),
            minimum=1,
            maximum=1024,
        )
        if max_other > max_in_flight:
            raise SettingsError(
                "REFGATE_MAX_IN_FLIGHT_OTHER",
                f"must not exceed REFGATE_MAX_IN_FLIGHT ({max_in_flight}): the API and console "
                "are shed before the click path",
            )
        attribution_days = _parse_int(env, "REFGATE_ATTRIBUTION_DAYS", 30, minimum=1, maximum=366)
        event_retention_days = _parse_int(
            env, "REFGATE_EVENT_RETENTION_DAYS", max(90, attribution_days), minimum=1, maximum=3660
        )
        if event_retention_days < attribution_days:
            raise SettingsError(
                "REFGATE_EVENT_RETENTION_DAYS",
                f"must be at least REFGATE_ATTRIBUTION_DAYS ({attribution_days}): a conversion's "
                "click must still be in the stream the flagger and exports read",
            )
        return cls(
            secret_keys=keys,
            data_dir=data_dir,
            public_url=public_url.rstrip("/"),
            redis_url=redis_url,
            trusted_proxies=_parse_int(env, "REFGATE_TRUSTED_PROXIES", 0, minimum=0, maximum=10),
            production=production,
            ip_hash_key=ip_hash_key,
            destination_hosts=hosts,
            store_timeout=_parse_float(
                env, "REFGATE_STORE_TIMEOUT", 0.25, minimum=0.01, maximum=10.0
            ),
            font_dirs=font_dirs,
            max_in_flight=max_in_flight,
            max_in_flight_other=max_other,
            door_queue=_parse_int(env, "REFGATE_DOOR_QUEUE", 4, minimum=0, maximum=100_000),
            gil_switch_interval=_parse_int(
                env, "REFGATE_GIL_SWITCH_US", 5000, minimum=100, maximum=100_000
            )
            / 1e6,
            max_queue_wait=_parse_int(env, "REFGATE_MAX_QUEUE_MS", 30, minimum=1, maximum=60_000)
            / 1000,
            rate_limit_prefix=_parse_int(
                env, "REFGATE_RATE_LIMIT_PREFIX", 1200, minimum=0, maximum=10_000_000
            ),
            rate_limit_token=_parse_int(
                env, "REFGATE_RATE_LIMIT_TOKEN", 600, minimum=0, maximum=10_000_000
            ),
            click_log=_parse_bool(env, "REFGATE_CLICK_LOG", default=False),
            jobs_in_workers=_parse_bool(env, "REFGATE_JOBS_IN_WORKERS", default=True),
            jobs_nice=_parse_int(env, "REFGATE_JOBS_NICE", 10, minimum=0, maximum=19),
            webhook_allow_private=_parse_bool(env, "REFGATE_WEBHOOK_ALLOW_PRIVATE", default=False),
            webhook_timeout=_parse_float(
                env, "REFGATE_WEBHOOK_TIMEOUT", 5.0, minimum=0.1, maximum=30.0
            ),
            attribution_days=attribution_days,
            event_retention_days=event_retention_days,
        )


def _parse_secret_keys(raw: str) -> tuple[bytes, ...]:
    keys = tuple(k.strip().encode() for k in raw.split(","))
    if any(not k for k in keys):
        raise SettingsError("REFGATE_SECRET_KEYS", "empty key in the list (check for stray commas)")
    short = [i for i, k in enumerate(keys) if len(k) < MIN_SECRET_BYTES]
    if short:
        raise SettingsError(
            "REFGATE_SECRET_KEYS",
            f"key #{short[0] + 1} is shorter than {MIN_SECRET_BYTES} characters; "
            "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'",
        )
    if len(set(keys)) != len(keys):
        raise SettingsError("REFGATE_SECRET_KEYS", "the same key is listed twice")
    return keys


def _dev_secret(data_dir: Path) -> bytes:
    path = data_dir / DEV_SECRET_FILE
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    key = secrets.token_urlsafe(32).encode()
    # O_EXCL: when two workers race on first start, one creates and both read the same key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    log.warning(
        "REFGATE_SECRET_KEYS is not set: generated a development key in %s. "
        "Set REFGATE_SECRET_KEYS (and REFGATE_PRODUCTION=1) in production.",
        path,
    )
    return key


def _parse_bool(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(name, f"expected a boolean (1/0, true/false), got {raw!r}")


def _parse_int(
    env: Mapping[str, str], name: str, default: int, *, minimum: int, maximum: int
) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(name, f"expected an integer, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise SettingsError(name, f"must be between {minimum} and {maximum}, got {value}")
    return value


def _parse_float(
    env: Mapping[str, str], name: str, default: float, *, minimum: float, maximum: float
) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(name, f"expected a number, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise SettingsError(name, f"must be between {minimum} and {maximum}, got {value}")
    return value
