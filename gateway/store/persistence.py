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
    managed services often disable CONFIG). On a cluster every primary is asked, and each one
    that keeps no append-only file is named."""
    try:
        if hasattr(client, "get_primaries"):  # redis-py's cluster client
            per_node = client.config_get("append*", target_nodes=client.PRIMARIES)
            if not isinstance(per_node, dict):
                return None
            problems = [
                f"{node}: {problem}"
                for node, config in sorted(per_node.items())
                if (problem := _problem(config)) is not None
            ]
            return "; ".join(problems) or None
        return _problem(client.config_get("append*"))
    except (RedisError, AttributeError):
        return None


def _problem(config: Any) -> str | None:
    if not isinstance(config, dict) or "appendonly" not in config:
        return None
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
