"""Replay (backtesting): a click log through the same engine, on a fresh isolated store.

Each click of a "click log v1" goes through :meth:`ClickGateway.handle` exactly as an HTTP click
would (the same signals, the same one-round-trip history script, the same detectors, model and
ladder), with the log's own timestamps as the clock. Conversions go through the same conversion
service as the API. Flags are raised by the same flagger, run on the log's clock. Nothing here
reimplements scoring.

Input, one JSON object per line, sorted by ``ts``:
    {"type":"click","id":"c1","ts":1770552000.1,"campaign":"milk-tea","referrer":"u42",
     "ip":"203.0.113.7","ua":"...","headers":{"accept-language":"zh-CN","referer":""},
     "visitor_id":"v-1"}
    {"type":"conversion","id":"x1","ts":1770552031.5,"campaign":"milk-tea","click_id":"c1",
     "user":"u77"}
Exported logs carry ``ip_hash``, ``prefix`` and ``network`` instead of ``ip`` (accepted too).

Output in DIR: clicks.jsonl (id, score, decision, reasons, outcome[, features]),
conversions.jsonl (id, and the outcome: campaign, referrer, user, click_id, status, amount,
reason; or status "refused" and the reason), flags.jsonl (kind, campaign, subject, score,
reasons, members), rewards.jsonl (campaign, referrer, user, click_id, status, amount, reason) and
summary.json. Click ids are the log's throughout (a click flag's subject too).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from gateway.campaigns import SLUG_PATTERN
from gateway.errors import ApiError
from gateway.events import ClickEvent
from gateway.links import EPOCH
from gateway.services import Services
from gateway.sharelinks import REFERRER_PATTERN
from gateway.signals import REPLAYED_NETWORK, VISITOR_COOKIE

_SLUG = re.compile(SLUG_PATTERN)
#: How often (in log time) the flagger runs during a replay, as the online job would.
FLAG_EVERY = 60.0
#: Destination of campaigns a replay creates for slugs it has not seen (never visited).
REPLAY_DESTINATION = "https://replay.refgate.invalid/"


class ReplayError(ValueError):
    """A line of the log is not valid click log v1; ``line`` is its 1-based number."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")
        self.line = line
        self.problem = problem


@dataclass
class ReplaySummary:
    events: int = 0
    clicks: int = 0
    previews: int = 0
    conversions: int = 0
    flags: int = 0
    rewards: int = 0
    seconds: float = 0.0
    decisions: dict[str, int] = field(default_factory=dict)

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def public(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "clicks": self.clicks,
            "previews": self.previews,
            "conversions": self.conversions,
            "flags": self.flags,
            "rewards": self.rewards,
            "seconds": round(self.seconds, 3),
            "events_per_second": round(self.events_per_second, 1),
            "decisions": self.decisions,
        }


def visitor_cookie_value(visitor_id: str) -> str:
    """Log visitor ids (any string) mapped to refgate's cookie format, stably."""
    digest = hashlib.sha256(b"refgate.replay-visitor:" + visitor_id.encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class Replayer:
    """Feeds log events through the services of an app: on an isolated store (``replay``), or
    the demo's store (``gateway.demo.seed_traffic``, which calls :meth:`restore` after)."""

    def __init__(self, services: Services, *, with_features: bool = False) -> None:
        self.services = services
        self.with_features = with_features
        self._tokens: dict[tuple[str, str], str] = {}
        self._campaigns: dict[str, int] = {}
        self._click_ids: dict[str, str] = {}
        #: refgate's click id -> the log's: every output file speaks of the log's ids.
        self._log_ids: dict[str, str] = {}
        self._captured: list[ClickEvent] = []
        self._next_flag_run = 0.0
        self._last_ts = float("-inf")
        # Pages are not looked at in a replay: skip rendering them (the answer's status and the
        # recorded outcome are decided before any page is drawn).
        gateway = services.gateway
        self._saved = (gateway.render, gateway.rate_limit_prefix, gateway.rate_limit_token)
        gateway.render = lambda environ, template, **context: ""
        # Every logged click is scored: flood limits (429, not recorded) would hide the floods
        # that replay and training are there to see.
        gateway.rate_limit_prefix = gateway.rate_limit_token = 0
        recorder = services.recorder
        original = recorder.record

        def capture(event: ClickEvent) -> None:
            self._captured.append(event)
            original(event)

        recorder.record = capture  # type: ignore[method-assign]
        self.summary = ReplaySummary()

    def restore(self) -> None:
        """Undo what the replayer changed in its services (pages, flood limits, the recorder),
        for services that go on serving after a replay (the demo's)."""
        gateway, recorder = self.services.gateway, self.services.recorder
        gateway.render, gateway.rate_limit_prefix, gateway.rate_limit_token = self._saved
        del recorder.record  # the instance's capture: the class's method answers again

    # -- events --------------------------------------------------------------------------------

    def play(self, number: int, line: dict[str, Any]) -> dict[str, Any] | None:
        """One line of the log: the periodic work due by its time, then the click or the
        conversion; returns its output row (None for a conversion with nothing to report)."""
        ts = _float(number, line, "ts")
        self.check_order(number, ts)
        self.tick(ts)
        summary = self.summary
        summary.events += 1
        if line["type"] == "click":
            row = self.click(number, line)
            summary.clicks += row["outcome"] != "preview"
            summary.previews += row["outcome"] == "preview"
            summary.decisions[row["decision"]] = summary.decisions.get(row["decision"], 0) + 1
            return row
        summary.conversions += 1
        return self.conversion(number, line)

    def finish(self) -> None:
        """The periodic work due at the end of the log (flags, tree detectors)."""
        if self.summary.events:
            self.tick(self._last_ts, force=True)

    def click(self, number: int, line: dict[str, Any]) -> dict[str, Any]:
        ts = _float(number, line, "ts")
        if line["id"] in self._click_ids:
            # Played twice, it would count twice and attribute conversions to the later one.
            raise ReplayError(number, f"click id {line['id']!r} appears twice in the log")
        slug = self._campaign(number, line)
        referrer = _string(number, line, "referrer")
        if not REFERRER_PATTERN.fullmatch(referrer):
            raise ReplayError(number, f"referrer {referrer!r} is not a valid referrer id")
        token = self._token(slug, referrer, ts)
        environ = _environ(number, line, token)
        self._captured.clear()
        answer = self.services.gateway.handle(token, environ, now=ts)
        event = self._captured[-1] if self._captured else None
        if event is None:
            return {
                "id": line["id"],
                "score": 1.0,
                "decision": "preview",
                "reasons": ["not a click: crawler, link preview or no user agent"],
                "outcome": "preview",
                "status": answer.status,
            }
        self._click_ids[line["id"]] = event.id
        self._log_ids[event.id] = line["id"]
        out: dict[str, Any] = {
            "id": line["id"],
            "score": event.score,
            "decision": event.decision,
            "reasons": event.reasons,
            "outcome": event.outcome,
        }
        if self.with_features:
            out["features"] = event.features
        return out

    def conversion(self, number: int, line: dict[str, Any]) -> dict[str, Any] | None:
        ts = _float(number, line, "ts")
        self._campaign(number, line)
        log_click = _string(number, line, "click_id")
        user = _string(number, line, "user")
        click_id = self._click_ids.get(log_click)
        if click_id is None:
            return {"id": line["id"], "status": "refused", "reason": "unknown_click"}
        self.services.recorder.flush()
        try:
            outcome = self.services.conversions.convert(
                click_id, user, idempotency_key=line["id"], now=ts
            )
        except ApiError as exc:
            return {"id": line["id"], "status": "refused", "reason": exc.code}
        row = outcome.replay_row()
        return {"id": line["id"], **row, "click_id": self.log_click_id(row["click_id"])}

    def log_click_id(self, ours: str) -> str:
        """The log's id of a click refgate recorded under ``ours``."""
        return self._log_ids.get(ours, ours)

    def tick(self, ts: float, force: bool = False) -> None:
        """Run the periodic work the online jobs would have run by log time ``ts``."""
        if force or ts >= self._next_flag_run:
            self.services.recorder.flush()
            self.services.flagger.run(ts)
            self.services.trees.run(ts)
            self._next_flag_run = ts + FLAG_EVERY

    # -- helpers -------------------------------------------------------------------------------

    def _campaign(self, number: int, line: dict[str, Any]) -> str:
        slug = _string(number, line, "campaign")
        if slug in self._campaigns:
            return slug
        if not _SLUG.fullmatch(slug):
            raise ReplayError(number, f"campaign {slug!r} is not a valid campaign slug")
        campaigns = self.services.campaigns
        campaign = campaigns.get(slug)
        if campaign is None:
            # Unknown campaigns get the default policy; links never expire within a replay.
            campaign = campaigns.create(
                {
                    "slug": slug,
                    "name": slug,
                    "destination_url": REPLAY_DESTINATION + slug,
                    "link_ttl_days": 3650,
                    "reward": {"amount": 1, "budget_total": 10**12},
                },
                actor="replay",
            )
        self._campaigns[slug] = campaign.id
        return slug

    def _token(self, slug: str, referrer: str, ts: float) -> str:
        key = (slug, referrer)
        token = self._tokens.get(key)
        if token is None:
            campaign = self.services.campaigns.require(slug)
            token = self.services.links.mint(campaign, referrer, now=ts - 1).token
            self._tokens[key] = token
        return token

    def check_order(self, number: int, ts: float) -> None:
        if not EPOCH < ts < 2**40:
            raise ReplayError(number, f"ts {ts} is not a unix time after 2024-01-01")
        if ts < self._last_ts:
            raise ReplayError(
                number, f"ts {ts} is earlier than the line before: the log must be sorted by ts"
            )
        self._last_ts = ts


def _environ(number: int, line: dict[str, Any], token: str) -> dict[str, Any]:
    headers = line.get("headers")
    if headers is None:
        headers = {}
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise ReplayError(number, "headers must be an object of strings")
    ua = line.get("ua") or ""
    if not isinstance(ua, str):
        raise ReplayError(number, "ua must be a string")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": f"/s/{token}",
        "SERVER_NAME": "replay",
        "SERVER_PORT": "443",
        "wsgi.url_scheme": "https",
        "HTTP_USER_AGENT": ua,
    }
    for name, value in headers.items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    ip = line.get("ip")
    if ip is not None:
        if not isinstance(ip, str):
            raise ReplayError(number, "ip must be a string")
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise ReplayError(number, f"ip {ip!r} is not an IPv4 or IPv6 address") from None
        environ["REMOTE_ADDR"] = ip
    elif "ip_hash" in line and "prefix" in line:
        environ[REPLAYED_NETWORK] = (
            str(line["ip_hash"]),
            str(line["prefix"]),
            str(line.get("network", "")),
        )
    else:
        raise ReplayError(number, "a click needs ip, or ip_hash and prefix")
    visitor = line.get("visitor_id")
    if visitor is not None:
        if not isinstance(visitor, str):
            raise ReplayError(number, "visitor_id must be a string or null")
        environ["HTTP_COOKIE"] = f"{VISITOR_COOKIE}={visitor_cookie_value(visitor)}"
    return environ


def _string(number: int, line: dict[str, Any], name: str) -> str:
    value = line.get(name)
    if not isinstance(value, str) or not value:
        raise ReplayError(number, f"{name} must be a non-empty string")
    return value


def _float(number: int, line: dict[str, Any], name: str) -> float:
    value = line.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ReplayError(number, f"{name} must be a number")
    return float(value)


def read_log(stream: IO[bytes]) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, raw in enumerate(stream, 1):
        if not raw.strip():
            continue
        try:
            line = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ReplayError(number, f"not JSON ({exc})") from None
        if not isinstance(line, dict):
            raise ReplayError(number, "not a JSON object")
        if line.get("type") not in ("click", "conversion"):
            raise ReplayError(number, "type must be 'click' or 'conversion'")
        if not isinstance(line.get("id"), str) or not line["id"]:
            raise ReplayError(number, "id must be a non-empty string")
        yield number, line


def replay(
    log: Path,
    out: Path,
    *,
    model_json: str | None = None,
    with_features: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ReplaySummary:
    """Replay ``log`` into ``out`` on a temporary embedded store; returns the summary."""
    from gateway import create_app
    from gateway.store.embedded import EmbeddedRedis

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="refgate-replay-") as tmp:
        store = EmbeddedRedis(Path(tmp))
        store.ensure_running()
        app = create_app(
            {
                "TESTING": True,  # no background jobs: replay runs them on the log's clock
                "REFGATE_DATA_DIR": tmp,
                "REDIS_URL": store.url(),
                "REFGATE_SECRET_KEYS": "refgate-replay-key-not-secret-0000",
                "REFGATE_PUBLIC_URL": "https://replay.refgate.invalid",
                # Offline, a slow answer is only slow: never score a click as in an outage.
                "REFGATE_STORE_TIMEOUT": "10",
                # Replay scores every logged click: flood limits would hide what a flood is.
                "REFGATE_RATE_LIMIT_PREFIX": "0",
                "REFGATE_RATE_LIMIT_TOKEN": "0",
            }
        )
        services: Services = app.extensions["refgate"]
        try:
            if model_json is not None:
                from detectors.model import ExportedModel

                services.gateway.engine.model = ExportedModel.from_json(model_json)
            replayer = Replayer(services, with_features=with_features)
            summary = replayer.summary
            started = time.perf_counter()
            with (
                open(log, "rb") as source,
                open(out / "clicks.jsonl", "wb") as clicks_out,
                open(out / "conversions.jsonl", "wb") as conversions_out,
            ):
                for number, line in read_log(source):
                    row = replayer.play(number, line)
                    if row is not None:
                        target = clicks_out if line["type"] == "click" else conversions_out
                        target.write(orjson.dumps(row) + b"\n")
                    if progress is not None:
                        progress(number)
                replayer.finish()
            summary.seconds = time.perf_counter() - started
            summary.flags = _write_flags(services, out / "flags.jsonl", replayer.log_click_id)
            summary.rewards = _write_rewards(services, out / "rewards.jsonl", replayer.log_click_id)
            (out / "summary.json").write_text(json.dumps(summary.public(), indent=2) + "\n")
        finally:
            services.close()
            store.stop(force=True)
    return summary


def _write_flags(services: Services, path: Path, log_click_id: Callable[[str], str]) -> int:
    """Flags, a click flag's subject as the log's click id."""
    flags, _ = services.flags.find(list(services.campaigns.iter_ids()), limit=10**9)
    rows = []
    for flag in flags:
        subject = log_click_id(flag.subject) if flag.kind == "click" else flag.subject
        rows.append((flag, subject))
    with open(path, "wb") as fh:
        for flag, subject in sorted(rows, key=lambda r: (r[0].campaign, r[0].kind, r[1])):
            row = {
                "kind": flag.kind,
                "campaign": flag.campaign,
                "subject": subject,
                "score": flag.score,
                "reasons": flag.reasons,
            }
            if flag.members:
                row["members"] = flag.members
            fh.write(orjson.dumps(row) + b"\n")
    return len(flags)


def _write_rewards(services: Services, path: Path, log_click_id: Callable[[str], str]) -> int:
    rows = services.rewards.replay_rows(list(services.campaigns.iter_ids()))
    with open(path, "wb") as fh:
        for row in rows:
            row["click_id"] = log_click_id(row["click_id"])
            fh.write(orjson.dumps(row) + b"\n")
    return len(rows)
