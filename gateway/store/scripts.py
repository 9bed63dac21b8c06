"""Lua scripts, loaded from ``lua/*.lua``; each file documents its KEYS and ARGV at the top.

A line ``-- include: <file>.lua`` is replaced by that file (a library of local functions, named
with a leading underscore, e.g. ``_stake.lua``): Redis has no module system, and several scripts
must keep one index the same way, atomically with their own writes.

Scripts run by SHA (EVALSHA). A restarted or failed-over server forgets its script cache, so a
NOSCRIPT reply loads the script and retries once. Pipelines queue EVALSHA directly instead of using
redis-py's pipeline script registry, which would add a SCRIPT EXISTS round trip to every batch.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

from redis.exceptions import NoScriptError

Arg = str | bytes | int | float


class LuaScript:
    __slots__ = ("name", "sha", "source")

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA1

    def __call__(self, client: Any, keys: Sequence[str], args: Sequence[Arg] = ()) -> Any:
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            client.script_load(self.source)
            return client.evalsha(self.sha, len(keys), *keys, *args)

    def queue(self, pipe: Any, keys: Sequence[str], args: Sequence[Arg] = ()) -> None:
        """Queue on a pipeline; the caller handles NOSCRIPT with :func:`execute_with_scripts`.

        ``execute_command`` rather than ``pipe.evalsha``: redis-py refuses the latter in cluster
        pipelines, while the raw command is routed by its keys (all in one slot) like any other.
        """
        pipe.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)


_INCLUDE = re.compile(r"^-- include: (_[a-z_]+\.lua)$", re.MULTILINE)


def _source(file: str) -> str:
    return resources.files("gateway.store").joinpath("lua", file).read_text()


@cache
def script(name: str) -> LuaScript:
    source = _INCLUDE.sub(lambda found: _source(found[1]).rstrip("\n"), _source(f"{name}.lua"))
    return LuaScript(name, source)


def load(client: Any, scripts: Sequence[LuaScript]) -> None:
    for item in scripts:
        client.script_load(item.source)


def execute_with_scripts(client: Any, build: Any, scripts: Sequence[LuaScript]) -> list[Any]:
    """Build a pipeline with ``build(pipe)`` and execute it; on NOSCRIPT load and run it again.

    ``build`` must describe idempotent work, because part of the first attempt may have run.
    """
    for attempt in (1, 2):
        pipe = client.pipeline(transaction=False)
        build(pipe)
        try:
            return list(pipe.execute(raise_on_error=True))
        except NoScriptError:
            if attempt == 2:
                raise
            load(client, scripts)
    raise AssertionError("unreachable")


def hmget_many(
    client: Any, keys: Sequence[str], fields: Sequence[str], chunk: int = 2000
) -> list[list[bytes | None]]:
    """HMGET of the same fields from many hashes of one slot (one campaign), ``chunk`` hashes
    per script call so the server is never blocked for long; about 2.5x cheaper for the client
    than a pipeline of HMGETs at thousands of keys."""
    hmget = script("hmget_many")
    if not keys:
        return []

    def build(pipe: Any) -> None:
        for start in range(0, len(keys), chunk):
            hmget.queue(pipe, keys[start : start + chunk], fields)

    return [row for part in execute_with_scripts(client, build, [hmget]) for row in part]
