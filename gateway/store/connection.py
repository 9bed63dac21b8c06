"""Opening the store: the embedded server by default, ``REDIS_URL`` (server or cluster) if set."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.cluster import RedisCluster
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
        return RedisCluster.from_url(plain, **common)
    return redis.Redis.from_url(url, **common)
