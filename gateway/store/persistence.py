"""What refgate expects of its Redis's persistence, checked (and warned about) at start.

The reward ledger, referral tree, flags and campaigns live only in Redis, so the server must keep
an append-only file: ``appendonly yes`` with ``appendfsync everysec`` (at most about a second of
writes lost if the machine loses power; Redis's default and the embedded store's setting) or
``always`` (nothing acknowledged is lost, at a cost in write latency). RDB snapshots alone lose
everything since the last snapshot. See the README, "Durability".
"""

from __future__ import annotations

import logging
from typing import Any

from redis.exceptions import RedisError

log = logging.getLogger(__name__)

GOOD_FSYNC = frozenset({"everysec", "always"})


def persistence_problem(client: Any) -> str | None:
    """What is wrong with the server's persistence, or None (also when it cannot be read:
    managed services often disable CONFIG)."""
    try:
        config = client.config_get("append*")
    except (RedisError, AttributeError):
        return None
    if not isinstance(config, dict) or "appendonly" not in config:
        return None  # a cluster client answers per node; checked by tools, not here
    if config.get("appendonly") != "yes":
        return "appendonly is off: a restart loses every write since the last RDB snapshot"
    if config.get("appendfsync") not in GOOD_FSYNC:
        return f"appendfsync is {config.get('appendfsync')!r}: use everysec or always"
    return None


def warn_about_persistence(client: Any) -> None:
    problem = persistence_problem(client)
    if problem is not None:
        log.warning(
            "the store's persistence is not what the reward ledger needs (%s); see the README, "
            "Durability",
            problem,
        )
