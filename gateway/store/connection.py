"""Opening the store: the embedded server by default, ``REDIS_URL`` (server or cluster) if set."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from gateway.settings import Settings
from gateway.store.embedded import EmbeddedRedis

#: Seconds an API, console, CLI or background operation waits for one reply of the store. Above
#: the two seconds Redis may hold writes while a slow disk catches up with the AOF; a store that
#: has not answered by then is hung, and a person at the console or a client of the API is better
#: served by a clear 503 now than by a page that hangs (10 s and two retries on time-outs kept a
#: console page waiting half a minute).
SLOW_TIMEOUT = 5.0
#: Seconds the event recorder waits on the store before spooling what it carries: a hung store
#: must not hold click events in a worker's memory (lost if the worker dies) for the slow
#: client's timeouts and retries, half a minute; the spool is the retry.
RECORD_TIMEOUT = 2.0


@dataclass
class Store:
    """The store's clients: ``fast`` for the click path (short timeout), ``record`` for the event
    recorder (a timeout of seconds, no retry: it spools instead), ``main`` for the rest."""

    fast: Any
    main: Any
    record: Any
    url: str
    embedded: EmbeddedRedis | None = None
    is_cluster: bool = False

    def close(self) -> None:
        for client in (self.fast, self.record, self.main):
            client.close()


def open_store(settings: Settings, *, start_embedded: bool = True) -> Store:
    embedded: EmbeddedRedis | None = None
    url = settings.redis_url
    if url is None:
        embedded = EmbeddedRedis(settings.data_dir)
        if start_embedded:
            embedded.ensure_running()
        url = embedded.url()
    cluster = url.startswith("redis+cluster://")
    # redis-py retries failed commands three times with backoff by default (seconds per click
    # when the store is down): the click path must fail at once and degrade; the rest may retry
    # briefly to ride over a failover (a refused or reset connection), but not a time-out: a
    # store that did not answer in SLOW_TIMEOUT will not answer the same command sooner.
    fast = _client(url, cluster, timeout=settings.store_timeout, retry=Retry(NoBackoff(), 0))
    reconnect = Retry(
        ExponentialBackoff(cap=0.5, base=0.05), 2, supported_errors=(redis.ConnectionError,)
    )
    main = _client(url, cluster, timeout=SLOW_TIMEOUT, retry=reconnect)
    record = _client(url, cluster, timeout=RECORD_TIMEOUT, retry=Retry(NoBackoff(), 0))
    return Store(
        fast=fast, main=main, record=record, url=url, embedded=embedded, is_cluster=cluster
    )


def _client(url: str, cluster: bool, *, timeout: float, retry: Retry) -> Any:
    common: dict[str, Any] = {
        "retry": retry,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "health_check_interval": 0,
        "decode_responses": False,
    }
    if cluster:
        parts = urlsplit(url)
        plain = urlunsplit(("redis", parts.netloc, parts.path, parts.query, ""))
        return LazyCluster(plain, **common)
    return redis.Redis.from_url(url, **common)


class LazyCluster:
    """A ``RedisCluster`` built at its first use, and at each use after until building works.

    redis-py's cluster client reads the slot map from the nodes in its constructor and raises
    ``RedisClusterException`` when none answers. Built eagerly, a cluster that was down while a
    gunicorn worker started (a worker recycled after a crash or a time-out during an outage)
    made the worker fail to boot, and gunicorn then stops the whole server: every click down,
    where a single server's outage only degrades the click path. Here an unreachable cluster is
    a ``redis.ConnectionError`` at the first command, which every caller already handles (it is
    a ``RedisError``; ``RedisClusterException`` is not), and the client is built once the
    cluster answers again."""

    #: Seconds after a failed build during which uses fail at once without trying again: the
    #: click path's threads must not queue one after another on a cluster that is not there.
    RETRY_AFTER = 1.0

    def __init__(self, url: str, **options: Any) -> None:
        self._url = url
        self._options = options
        self._client: RedisCluster | None = None
        self._lock = threading.Lock()
        #: When the latest build failed, and why.
        self._failed: tuple[float, str] | None = None

    def client(self) -> RedisCluster:
        client = self._client
        if client is not None:
            return client
        with self._lock:
            if self._client is not None:
                return self._client
            failed = self._failed
            if failed is not None and time.monotonic() - failed[0] < self.RETRY_AFTER:
                # A new exception each time: one shared instance would collect every raiser's
                # traceback (and hold their frames).
                raise redis.ConnectionError(failed[1])
            try:
                self._client = RedisCluster.from_url(self._url, **self._options)
            except RedisClusterException as exc:
                reason = f"the cluster cannot be reached: {exc}"
                self._failed = (time.monotonic(), reason)
                raise redis.ConnectionError(reason) from exc
            self._failed = None
            return self._client

    def __getattr__(self, name: str) -> Any:
        # Only what this class lacks: commands, pipeline(), PRIMARIES, get_primaries()...
        return getattr(self.client(), name)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
