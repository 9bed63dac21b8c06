"""The click, handled in one place: verify, gather signals, read history, score, respond, record.

Costs on this path are paid on every click, so it touches the store once (one script call that
reads what scoring needs and carries the events of earlier clicks); the event itself waits in the
recorder for the next round trip. If the store is slow or down the click is still answered: with
the campaign as last cached, no history, and no credit for the referrer (fail open for people,
closed for money).

Answers are plain WSGI callables (:class:`Answer`): the redirect, which is almost every click,
never builds a framework response object; pages render through a :class:`PageRenderer`.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError
from werkzeug.wrappers import Response

from detectors.base import ClickInput, History, four_decimals
from detectors.engine import Decision, Engine, Verdict
from gateway.campaigns import CampaignService, ClickView
from gateway.challenge import ChallengeSigner
from gateway.clickcall import click_call, parse_history
from gateway.destinations import CLICK_PARAM
from gateway.events import ClickEvent
from gateway.links import InvalidLink, LinkCodec, ShareLink
from gateway.logs import OutageLog
from gateway.metrics import Metrics
from gateway.pages import ClickPages, PageRenderer
from gateway.platforms import SCAN_ON_DESKTOP, ClientInfo, Strategy, detect
from gateway.recorder import EventRecorder
from gateway.signals import SignalGatherer, visitor_cookie
from gateway.store import keys
from gateway.store.clickstore import ClickStore

log = logging.getLogger(__name__)
#: One line per click when REFGATE_CLICK_LOG is set (JSON under refgate serve).
click_log = logging.getLogger("refgate.clicks")

NO_STORE = ("Cache-Control", "no-store")
HTML = ("Content-Type", "text/html; charset=utf-8")
#: The public pages' policy: their own stylesheet, script (the fallback's copy button) and QR
#: image, nothing inline, and never inside another site's frame (a framed challenge or fallback
#: page could be click-jacked into its one tap). No form-action: the challenge's form answers
#: with a redirect to the campaign's destination, which browsers would check against it.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = (
    ("Content-Security-Policy", PAGE_POLICY),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
)
#: Sent with every answer over https, never over plain http (a browser ignores it there, and
#: it would suggest the site were protected). No includeSubDomains or preload: an operator may
#: serve other hosts of the domain that have no https.
HSTS = ("Strict-Transport-Security", "max-age=31536000")
STATUS_LINES = {
    200: "200 OK",
    302: "302 Found",
    403: "403 Forbidden",
    404: "404 Not Found",
    410: "410 Gone",
    429: "429 Too Many Requests",
    503: "503 Service Unavailable",
}

StartResponse = Callable[..., Any]
Environ = dict[str, Any]


class Answer:
    """A finished response: status, headers and body, callable as a WSGI application."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes = b"") -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def response(self) -> Response:
        """As a werkzeug Response, for Flask views (the fast path calls the answer itself)."""
        return Response(self.body, status=self.status, headers=self.headers)

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((value for key, value in self.headers if key.lower() == lowered), None)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        length = ("Content-Length", str(len(self.body)))
        # One comparison and a constant tuple: this runs for every click. ProxyFix (outside
        # this) has set the scheme from X-Forwarded-Proto when the proxy is trusted.
        if environ.get("wsgi.url_scheme") == "https":
            start_response(STATUS_LINES[self.status], [*self.headers, length, HSTS])
        else:
            start_response(STATUS_LINES[self.status], [*self.headers, length])
        # No body, no body chunk: gunicorn sends each chunk with a system call of its own, an
        # empty one included, and a redirect has no body.
        if not self.body or environ.get("REQUEST_METHOD") == "HEAD":
            return []
        return [self.body]


class StoreUnavailable(Exception):
    """The store cannot be reached and the click path has nothing cached to fall back on."""


class Breaker:
    """Skips the store for ``cooldown`` seconds once it is failing, instead of waiting on it.

    A stall of the store (the fork of an AOF rewrite, a slow disk) fails every click round trip
    in flight at once, and all of them were sent before it. Opening on the first of those
    failures cost a second of unscored clicks (never credited) after a stall of a quarter of
    one, in every worker at once. So a store read of the click path (its round trip, a
    campaign's first load, a preview's refresh) opens the breaker when one sent after a failure
    fails too (:meth:`failed`): the store is still failing, not merely was. A click round trip
    that succeeds forgets the failure. A store that is down costs one more failed call per
    worker than opening at once (instant when it refuses, the click timeout when it hangs); an
    open breaker lets one click through per ``cooldown`` to probe it, and that probe's failure
    opens it again at once.
    """

    def __init__(self, cooldown: float = 1.0) -> None:
        self.cooldown = cooldown
        self._open_until = 0.0
        #: When the failure of the current streak was seen (monotonic), None without one.
        self._failing_since: float | None = None

    @property
    def closed(self) -> bool:
        return time.monotonic() >= self._open_until

    def failed(self, sent: float) -> None:
        """A round trip sent at ``sent`` (monotonic) failed: open if it was sent after the
        streak's first failure, else note the failure (the first of a stall)."""
        now = time.monotonic()
        since = self._failing_since
        if since is None:
            self._failing_since = now
        elif sent >= since:
            self._open_until = now + self.cooldown

    def succeeded(self) -> None:
        self._failing_since = None

    def reset(self) -> None:
        self._open_until = 0.0
        self._failing_since = None


@dataclass(slots=True)
class Click:
    """Everything known about the click being handled; the ladder's responders read it."""

    id: str
    now: float
    link: ShareLink
    view: ClickView
    signals: ClickInput
    history: History
    verdict: Verdict
    state: str  # live | expired | revoked | ended | paused | not_started
    environ: Environ
    token: str
    client: ClientInfo
    strategy: Strategy


Responder = Callable[["ClickGateway", Click], "tuple[str, Answer] | None"]


class ClickGateway:
    def __init__(
        self,
        *,
        codec: LinkCodec,
        campaigns: CampaignService,
        gatherer: SignalGatherer,
        engine: Engine,
        recorder: EventRecorder,
        store: Any,
        click_store: ClickStore,
        render: PageRenderer,
        challenges: ChallengeSigner,
        public_url: str,
        secure_cookies: bool,
        metrics: Metrics | None = None,
        rate_limit_prefix: int = 0,
        rate_limit_token: int = 0,
        log_clicks: bool = False,
    ) -> None:
        self._codec = codec
        self._campaigns = campaigns
        self._gatherer = gatherer
        self.engine = engine
        self._recorder = recorder
        self._redis = store
        self._store = click_store
        self.render = render
        self.pages = ClickPages(render)
        self.challenges = challenges
        self._share_base = public_url + "/s/"
        self._secure = secure_cookies
        self.breaker = Breaker()
        #: The click path probes a store that is down once a second (the breaker's cooldown),
        #: and every click in flight when it fails fails too: one line when the outage starts,
        #: a reminder a minute and one when it ends, per worker, instead of one per probe.
        self.outage = OutageLog(
            log,
            "store unavailable on the click path, clicks served without it (no credit)",
            "store answering the click path again",
            remind=60.0,
        )
        self.metrics = metrics or Metrics()
        #: Flood limits: clicks per minute per campaign from one network prefix and on one
        #: sharer's link, as counted by click.lua in the click's own round trip (0: no limit).
        self.rate_limit_prefix = rate_limit_prefix
        self.rate_limit_token = rate_limit_token
        self.log_clicks = log_clicks
        #: The fallback ladder: the first responder that answers wins. Order matters.
        self.ladder: Sequence[Responder] = (
            respond_gone,
            respond_block,
            respond_challenge,
            respond_fallback,
            respond_redirect,
        )

    def handle(self, token: str, environ: Environ, now: float | None = None) -> Answer:
        """Answer one click. ``now`` is the click's time: the wall clock when serving, the
        log's own timestamps when replaying."""
        if now is None:
            now = time.time()
        try:
            link = self._codec.decode(token)
        except InvalidLink:
            return self.page(environ, 404, "click/not_found.html")
        view = self._campaigns.cached_view(link.campaign_id)
        if view is None:
            try:
                view = self._load(link.campaign_id)
            except StoreUnavailable:
                return self.busy(environ)
            if view is None:
                return self.page(environ, 404, "click/not_found.html")
        user_agent = environ.get("HTTP_USER_AGENT", "")
        client = detect(user_agent)
        # Crawlers, link previews, HEAD and agent-less requests see the campaign, are not clicks.
        agentless = not user_agent.strip()
        head = environ.get("REQUEST_METHOD") == "HEAD"
        if client.bot or agentless or head:
            if not head and (agentless or client.bot == "crawler"):
                # A script or a headless browser on the sharer's link (a chat app's unfurler is a
                # "link_preview", a HEAD learns nothing of the page): never a click, so the
                # flagger's tallies never see it, and a bot operation fetching a link thousands
                # of times would go unnoticed. Counted in memory; the recorder's flusher writes
                # the counts (no store call here).
                self._recorder.note_automated(link.campaign_id, link.referrer_id)
            # No round trip of their own notices a change here: a view at most seconds old, so
            # link cards show the campaign as it is (its name, a pause, an end), as people see
            # it. (A revocation needs the store's history call, which previews do not make.)
            view = self._recent(link.campaign_id, view)
            state = link_state(view, link, now)
            if state != "live":
                return self.gone(environ, view, state)
            # Unfurlers may cache the preview briefly; it carries nothing per visitor. The same
            # address answers people with a redirect: caches must keep them apart.
            preview = self.page(
                environ,
                200,
                "click/preview.html",
                cache="public, max-age=300",
                slots={"page_url": self.share_url(token)},
                view=view,
            )
            preview.headers.append(("Vary", "User-Agent, Accept-Language"))
            return preview

        signals = self._gatherer.gather(environ, link, now, client)
        cid = click_id(link)
        history, generation = self._history(signals, cid)
        if history.available:
            flood = self._flood(history)
            if flood is not None:
                # Abusive floods are refused before scoring and never recorded as clicks.
                self.metrics.shed(flood)
                return self.too_many(environ)
        # The round trip reloads the campaign if it changed (paused, edited): use what it found.
        view = self._campaigns.cached_view(link.campaign_id) or view
        state = link_state(view, link, now)
        if generation is not None and generation != link.generation and state == "live":
            state = "revoked"
        verdict = (
            self.engine.score(signals, history, view.policy) if history.available else UNSCORED
        )

        click = Click(
            cid,
            now,
            link,
            view,
            signals,
            history,
            verdict,
            state,
            environ,
            token,
            client,
            view.strategy_for(client.platform),
        )
        for responder in self.ladder:
            answer = responder(self, click)
            if answer is not None:
                outcome, response = answer
                break
        else:  # pragma: no cover - respond_redirect always answers
            raise AssertionError("the ladder has no final responder")
        if signals.new_visitor and signals.visitor_id:
            response.headers.append(
                ("Set-Cookie", visitor_cookie(signals.visitor_id, self._secure))
            )
        self._recorder.record(_event(click, outcome))
        decision = click.verdict.decision.value
        self.metrics.click(decision, click.client.platform.key, outcome)
        if not history.available:
            self.metrics.unscored.inc()
        if self.log_clicks:
            click_log.info(
                "click",
                extra={
                    "click_id": cid,
                    "campaign": view.campaign.slug,
                    "decision": decision,
                    "outcome": outcome,
                    "platform": click.client.platform.key,
                    "scored": history.available,
                },
            )
        return response

    def _flood(self, history: History) -> str | None:
        limit = self.rate_limit_prefix
        if limit and history.prefix_1m > limit:
            return "prefix"
        limit = self.rate_limit_token
        if limit and history.referrer_1m > limit:
            return "token"
        return None

    # -- the store -------------------------------------------------------------------------------

    def current(self, link: ShareLink, now: float) -> tuple[ClickView, str] | None:
        """The campaign's recent view and the link's state in it, revocation included, for an
        answer with no click round trip of its own (the challenge's); None for an unknown
        campaign. Raises StoreUnavailable when the campaign was never loaded and cannot be."""
        view = self._campaigns.cached_view(link.campaign_id)
        if view is None:
            view = self._load(link.campaign_id)
            if view is None:
                return None
        view = self._recent(link.campaign_id, view)
        state = link_state(view, link, now)
        if state == "live" and self.breaker.closed:
            ck = keys.campaign_keys(link.campaign_id)
            sent = time.monotonic()
            try:
                generation = self._redis.hget(ck.referrer_generation, link.referrer_id)
            except RedisError as exc:  # fail open: the person still gets where they were going
                log.warning("store unavailable reading a link's generation: %s", exc)
                self.metrics.store_error("load")
                self.breaker.failed(sent)
            else:
                if int(generation or 0) != link.generation:
                    state = "revoked"
        return view, state

    def gone(self, environ: Environ, view: ClickView, state: str) -> Answer:
        """The page a link that is not live shows (403 paused or not started, else 410)."""
        status = 403 if state in {"paused", "not_started"} else 410
        return self.page(environ, status, "click/gone.html", reason=state, view=view)

    def _recent(self, campaign_id: int, view: ClickView) -> ClickView:
        """The campaign's view loaded at most RECENT_VIEW seconds ago (one read when older), for
        answers without a round trip of their own; ``view`` when the store fails (fail open)."""
        if not self.breaker.closed:
            return view
        sent = time.monotonic()
        try:
            return self._campaigns.recent_view(campaign_id) or view
        except RedisError as exc:
            log.warning("store unavailable refreshing campaign %s: %s", campaign_id, exc)
            self.metrics.store_error("load")
            self.breaker.failed(sent)
            return view

    def _load(self, campaign_id: int) -> ClickView | None:
        """Load a campaign this worker has not seen yet (one extra round trip, once). Without
        the store, the view this machine last loaded (its disk), so a worker started during an
        outage still sends people on; StoreUnavailable when there is none."""
        if self.breaker.closed:
            sent = time.monotonic()
            try:
                return self._campaigns.load_view(campaign_id, self._redis)
            except RedisError as exc:
                log.warning("store unavailable loading campaign %s: %s", campaign_id, exc)
                self.metrics.store_error("load")
                self.breaker.failed(sent)
        view = self._campaigns.last_known_view(campaign_id)
        if view is None:
            raise StoreUnavailable
        log.warning(
            "campaign %s served as last kept on this machine: store unavailable", campaign_id
        )
        return view

    def _history(self, signals: ClickInput, cid: str = "") -> tuple[History, int | None]:
        """The click's one round trip: its history, and the waiting events of this campaign
        carried along. A changed campaign (paused, edited) is reloaded: rare, one more trip."""
        campaign_id = signals.campaign_id
        if not self.breaker.closed:
            return History(available=False), None
        carried = self._recorder.carry(campaign_id)
        recorder = self._recorder
        call_keys, args = click_call(
            campaign_id, signals, carried, recorder.click_ttl, recorder.stream_minid()
        )
        sent = time.monotonic()
        try:
            reply = self._store.call(call_keys, args)
            if int(reply[0]) != self._campaigns.cached_version(campaign_id):
                self._campaigns.load_view(campaign_id, self._redis)
        except RedisError as exc:
            self.outage.failed(exc, click_id=cid)
            self.metrics.store_error("click")
            self.breaker.failed(sent)
            recorder.put_back(carried)
            return History(available=False), None
        self.breaker.succeeded()
        if self.outage.since is not None:
            self.outage.ok()
        return parse_history(reply), int(reply[1])

    # -- pages -------------------------------------------------------------------------------

    def page(
        self,
        environ: Environ,
        status: int,
        template: str,
        *,
        cache: str = "no-store",
        slots: Mapping[str, str] | None = None,
        **context: Any,
    ) -> Answer:
        """A page: ``context`` holds what many clicks share (the campaign, the app), ``slots``
        the strings that differ per click (the link, the click id), so that the rendered page
        can be kept and filled in (gateway.pages)."""
        body = self.pages(environ, template, slots or {}, context).encode()
        return Answer(status, [HTML, ("Cache-Control", cache), *PAGE_HEADERS], body)

    def fallback(
        self,
        environ: Environ,
        view: ClickView,
        client: ClientInfo,
        strategy: Strategy,
        token: str,
        click: str,
    ) -> Answer:
        """The fallback page of an app that blocks or cripples links, continuing as ``click``."""
        platform = client.platform
        return self.page(
            environ,
            200,
            "click/fallback.html",
            view=view,
            app_name=platform.name,
            # The app's desktop client (WeChat, QQ, DingTalk... on a computer) has neither the
            # phone app's ··· menu nor its long-press: the page's own guide, and a phone to scan.
            guide=platform.guide if client.mobile else "",
            scan=platform.scan if client.mobile else SCAN_ON_DESKTOP,
            strategy=strategy.value,
            blocked=view.campaign.blocked_on(platform.key),
            slots={
                "share_url": self.share_url(token),
                "qr_url": f"/s/{token}/qr.svg",
                "continue_url": view.destination.with_param(CLICK_PARAM, click),
            },
        )

    def share_url(self, token: str) -> str:
        return self._share_base + token

    def busy(self, environ: Environ, retry_after: int = 5) -> Answer:
        answer = self.page(environ, 503, "busy.html")
        answer.headers.append(("Retry-After", str(retry_after)))
        return answer

    def too_many(self, environ: Environ) -> Answer:
        """A flood limit was hit: the busy page with 429; the minute's counters reset soon."""
        answer = self.page(environ, 429, "busy.html", wait_a_minute=True)  # as Retry-After says
        answer.headers.append(("Retry-After", "60"))
        return answer


UNSCORED = Verdict(0.0, Decision.DENY_CREDIT, ("store: unavailable, served without history",))


def link_state(view: ClickView, link: ShareLink, now: float) -> str:
    state = view.campaign.state_at(now)
    if state == "live" and now >= link.issued_at + view.link_ttl_seconds:
        return "expired"
    return state


def click_id(link: ShareLink) -> str:
    # The campaign id prefix lets a conversion find the click's record (and its hash slot);
    # 96 random bits make click ids unguessable.
    return f"{link.campaign_id:x}.{secrets.token_urlsafe(12)}"


def _event(click: Click, outcome: str) -> ClickEvent:
    signals = click.signals
    return ClickEvent(
        id=click.id,
        ts=click.now,
        campaign_id=click.link.campaign_id,
        campaign=click.view.campaign.slug,
        referrer_id=click.link.referrer_id,
        visitor_id=signals.visitor_id,
        ip_hash=signals.ip_hash,
        prefix=signals.prefix,
        ua=signals.ua,
        accept_language=signals.accept_language,
        referer=signals.referer,
        scan=signals.scan,
        outcome=outcome,
        decision=click.verdict.decision.value,
        score=click.verdict.score,  # rounded by the engine
        reasons=list(click.verdict.reasons),
        platform=click.client.platform.key,
        network=signals.network,
        scored=click.history.available,
        counted=click.history.available,
        features=_rounded(click.verdict.features),
    )


def _rounded(vector: Sequence[float]) -> list[float]:
    """Features as recorded: four decimals. Most are 0 or 1 already, and rounding costs more
    than the comparison (36 features on every click)."""
    return [value if value == 0.0 or value == 1.0 else four_decimals(value) for value in vector]


# -- the ladder's responders ---------------------------------------------------------------


def respond_gone(gateway: ClickGateway, click: Click) -> tuple[str, Answer] | None:
    if click.state == "live":
        return None
    return click.state, gateway.gone(click.environ, click.view, click.state)


def respond_block(gateway: ClickGateway, click: Click) -> tuple[str, Answer] | None:
    if click.verdict.decision is not Decision.BLOCK:
        return None
    return "blocked", gateway.page(click.environ, 403, "click/blocked.html")


def respond_challenge(gateway: ClickGateway, click: Click) -> tuple[str, Answer] | None:
    """One tap to continue: people pass, link scripts rarely do (see gateway.challenge)."""
    if click.verdict.decision is not Decision.CHALLENGE:
        return None
    return "challenge", gateway.page(
        click.environ,
        200,
        "click/challenge.html",
        slots={
            "token": click.token,
            "challenge": gateway.challenges.issue(click.id, click.token, click.now),
        },
        view=click.view,
    )


def respond_fallback(gateway: ClickGateway, click: Click) -> tuple[str, Answer] | None:
    """In-app browsers that block or cripple links get a page that still works: the QR code,
    the app's own "open in browser" route, a copyable link and a plain link to continue."""
    if click.strategy is Strategy.REDIRECT:
        return None
    return "fallback", gateway.fallback(
        click.environ, click.view, click.client, click.strategy, click.token, click.id
    )


def respond_redirect(gateway: ClickGateway, click: Click) -> tuple[str, Answer]:
    location = click.view.destination.with_param(CLICK_PARAM, click.id)
    return "redirect", Answer(302, [("Location", location), NO_STORE])
