"""The external ids of the referrers named in a campaign's event stream.

An event names its referrer by numeric id (the id its share link carries); the external id, the
one people and the API use, is looked up here, by the stream's readers, off the click path: one
HMGET per batch of entries, where ``click.lua`` had looked it up once per click. Entries written
before this carry the external id themselves (field ``r``) and are read as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from gateway.store import keys


class ReferrerNames:
    """Numeric referrer id -> external id for one campaign, cached: a link's numeric id names
    one referrer for the campaign's life."""

    def __init__(self, redis: Any, campaign_id: int) -> None:
        self._redis = redis
        self._key = keys.campaign_keys(campaign_id).referrer_external
        self._names: dict[int, str] = {}

    def events(
        self, entries: Sequence[tuple[Any, dict[bytes, bytes]]]
    ) -> list[tuple[dict[str, Any], str]]:
        """Each stream entry's event and its referrer's external id ("" for an id the campaign
        does not know), with one lookup for the ids not seen before."""
        parsed = [(orjson.loads(fields[b"e"]), fields.get(b"r")) for _, fields in entries]
        names = self.names(event["referrer_id"] for event, named in parsed if named is None)
        return [
            (event, named.decode() if named is not None else names[event["referrer_id"]])
            for event, named in parsed
        ]

    def names(self, numbers: Iterable[int]) -> dict[int, str]:
        """External ids by numeric id ("" for an id the campaign does not know), with one
        lookup for the ids not seen before; the returned mapping holds every id seen so far."""
        missing = sorted(set(numbers) - self._names.keys())
        if missing:
            found = self._redis.hmget(self._key, [str(n) for n in missing])
            for number, name in zip(missing, found, strict=True):
                self._names[number] = name.decode() if name is not None else ""
        return self._names
