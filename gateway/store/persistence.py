"""What refgate expects of its Redis's persistence, checked (and warned about) at start.

The reward ledger, referral tree, flags and campaigns live only in Redis, so the server must keep
an append-only file: ``appendonly yes`` with ``appendfsync everysec`` (at most about a second of
writes lost if the machine loses power; Redis's default and the embedded store's setting) or
``always`` (nothing acknowledged is lost, at a cost in write latency). RDB snapshots alone lose
everything since the last snapshot. See the README, "Durability".

The click path's history of an hour is one hash per campaign (click.lua), millions of fields at
a festival's peak: freed in the server's main thread when it expires, it would stall every
client for as long as that takes. ``lazyfree-lazy-expire yes`` frees it in a background thread
(the embedded store's setting); its absence is warned about too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

log = logging.getLogger(__name__)

GOOD_FSYNC = frozenset({"everysec", "always"})


def persistence_problem(client: Any) -> str | None:
    """What is wrong with the server's persistence, or None (also when it cannot be read:
    managed services often disable CONFIG). On a cluster every primary is asked, and each one
    that keeps no append-only file is named."""
    return _config_problem(client, "append*", _persistence)


def lazy_expiry_problem(client: Any) -> str | None:
    """Why an expiring big key would stall the server, or None (as persistence_problem)."""
    return _config_problem(client, "lazyfree-lazy-expire", _lazy_expiry)


def _config_problem(client: Any, pattern: str, check: Callable[[Any], str | None]) -> str | None:
    try:
        if hasattr(client, "get_primaries"):  # redis-py's cluster client
            per_node = client.config_get(pattern, target_nodes=client.PRIMARIES)
            if not isinstance(per_node, dict):
                return None
            problems = [
                f"{node}: {problem}"
                for node, config in sorted(per_node.items())
                if (problem := check(config)) is not None
            ]
            return "; ".join(problems) or None
        return check(client.config_get(pattern))
    except (RedisError, AttributeError):
        return None


def _lazy_expiry(config: Any) -> str | None:
    if not isinstance(config, dict) or config.get("lazyfree-lazy-expire", "yes") == "yes":
        return None
    return (
        "lazyfree-lazy-expire is off: an hour's click history (one hash per campaign) is freed "
        "in the main thread when it expires, stalling every client meanwhile"
    )


def _persistence(config: Any) -> str | None:
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


def warn_about_lazy_expiry(client: Any) -> None:
    problem = lazy_expiry_problem(client)
    if problem is not None:
        log.warning("the store's configuration: %s; see the README, Durability", problem)
