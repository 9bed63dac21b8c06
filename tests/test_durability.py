"""The ledger survives its Redis server: restart (or crash) the server holding a campaign and its
referral tree, reward ledger and flags are all there, exactly as before.

The store runs with the persistence refgate expects (README, "Durability"): AOF on. With
``appendfsync always`` every acknowledged write survives even ``kill -9``; with ``everysec`` a
clean stop (SIGTERM, as systemd and Docker send) loses nothing, a crash at most the last second.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from gateway import create_app
from gateway.flags import FlagCandidate
from gateway.store import keys
from gateway.store.embedded import EmbeddedRedis
from gateway.store.persistence import lazy_expiry_problem, persistence_problem
from tests.conftest import bearer, make_app, services_of
from tests.redisproc import RedisProcess
from tests.test_conversions import convert, record_click, setup_campaign

pytestmark = pytest.mark.slow


def snapshot(client: FlaskClient, admin: dict[str, str]) -> dict[str, Any]:
    """What a campaign's money depends on, as the API shows it."""
    paths = {
        "campaign": "/api/v1/campaigns/tea",
        "tree": "/api/v1/campaigns/tea/tree/alice?depth=3",
        "ancestors": "/api/v1/campaigns/tea/ancestors/carol",
        "rewards": "/api/v1/rewards?campaign=tea",
        "flags": "/api/v1/flags?campaign=tea",
        "stats": "/api/v1/campaigns/tea/stats",
    }
    found = {}
    for name, path in paths.items():
        response = client.get(path, headers=admin)
        assert response.status_code == 200, (path, response.json)
        found[name] = response.json
    return found


@pytest.fixture(
    params=[("always", True), ("everysec", False)], ids=["always-kill", "everysec-stop"]
)
def durable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[RedisProcess, bool]]:
    fsync, crash = request.param
    process = RedisProcess(tmp_path / "redis", appendfsync=fsync)
    process.start()
    yield process, crash
    process.stop()


def test_tree_ledger_and_flags_survive_a_restart(
    tmp_path: Path, durable: tuple[RedisProcess, bool]
) -> None:
    process, crash = durable
    config = redis.Redis.from_url(process.url).config_get("append*")
    assert config["appendonly"] == "yes"
    app: Flask = make_app(tmp_path / "data", process.url)
    services = services_of(app)
    client = app.test_client()
    try:
        admin = bearer(services.api_keys.create("admin", "admin")[0])
        conversion_key = services.api_keys.create("landing", "conversion")[0]
        campaign = setup_campaign(client, admin)
        for referrer, user in (("alice", "bob"), ("bob", "carol"), ("alice", "dave")):
            response = convert(
                client, conversion_key, record_click(services, campaign, referrer), user
            )
            assert response.status_code == 201, response.json
        flag, _ = services.flags.raise_flag(
            campaign["id"], "tea", FlagCandidate("referrer", "dave", 0.8, ("burst",)), 1.0
        )
        before = snapshot(client, admin)
        assert before["tree"]["subtree_size"] == 3
        assert len(before["rewards"]["rewards"]) == 3
        assert [f["id"] for f in before["flags"]["flags"]] == [flag.id]

        process.stop(kill=crash)
        process.start()
        services.gateway.breaker.reset()

        assert snapshot(client, admin) == before
        # The ledger still refuses a second credit for the same conversion.
        again = convert(client, conversion_key, before["rewards"]["rewards"][0]["click_id"], "bob")
        assert again.status_code in {200, 409}
        assert snapshot(client, admin)["rewards"] == before["rewards"]
    finally:
        services.close()


def test_click_events_survive_a_restart_and_their_scoring_history_does_not(
    tmp_path: Path, durable: tuple[RedisProcess, bool]
) -> None:
    """click.lua keeps the click's history (velocity windows, the sharer's latest click times)
    out of the AOF: state that expires within hours, written on every click. The events, and
    the counters the stats read, are persisted like the ledger."""
    process, crash = durable
    app: Flask = make_app(tmp_path / "data", process.url)
    services = services_of(app)
    client = app.test_client()
    try:
        admin = bearer(services.api_keys.create("admin", "admin")[0])
        campaign = setup_campaign(client, admin)
        token = services.links.mint(services.campaigns.require("tea"), "alice").token
        for n in range(5):
            answer = client.get(f"/s/{token}", environ_base={"REMOTE_ADDR": f"198.51.100.{n}"})
            assert answer.status_code == 302
        services.recorder.flush()
        ck = keys.campaign_keys(campaign["id"])
        store = redis.Redis.from_url(process.url)
        history = list(store.scan_iter(f"{ck.history_prefix}*"))
        assert history, "the clicks wrote their history"
        stats_before = client.get("/api/v1/campaigns/tea/stats", headers=admin).json

        process.stop(kill=crash)
        process.start()
        services.gateway.breaker.reset()

        store = redis.Redis.from_url(process.url)
        assert store.xlen(ck.events) == 5
        assert list(store.scan_iter(f"{ck.history_prefix}*")) == []
        assert client.get("/api/v1/campaigns/tea/stats", headers=admin).json == stats_before
    finally:
        services.close()


def test_persistence_is_checked(
    embedded_server: EmbeddedRedis, durable: tuple[RedisProcess, bool]
) -> None:
    process, _ = durable
    assert persistence_problem(redis.Redis.from_url(process.url)) is None
    # The embedded store keeps an append-only file too.
    embedded = redis.Redis.from_url(embedded_server.url())
    assert embedded.config_get("appendonly")["appendonly"] == "yes"
    assert persistence_problem(embedded) is None
    plain = redis.Redis.from_url(process.url)
    plain.config_set("appendfsync", "no")
    assert "appendfsync is 'no'" in (persistence_problem(plain) or "")


def test_lazy_expiry_is_checked(
    embedded_server: EmbeddedRedis, durable: tuple[RedisProcess, bool]
) -> None:
    """An hour's click history is one big hash: the embedded store frees it lazily, and a
    server that would free it in its main thread is named at start."""
    embedded = redis.Redis.from_url(embedded_server.url())
    assert embedded.config_get("lazyfree-lazy-expire")["lazyfree-lazy-expire"] == "yes"
    assert lazy_expiry_problem(embedded) is None
    process, _ = durable
    plain = redis.Redis.from_url(process.url)
    plain.config_set("lazyfree-lazy-expire", "no")
    assert "lazyfree-lazy-expire is off" in (lazy_expiry_problem(plain) or "")
    plain.config_set("lazyfree-lazy-expire", "yes")
    assert lazy_expiry_problem(plain) is None


def test_persistence_is_checked_on_every_primary_of_a_cluster() -> None:
    """The test cluster keeps no file (CI starts it so): every primary is named. With the
    append-only file on everywhere, nothing is reported."""
    from redis.cluster import RedisCluster

    from tests.conftest import CLUSTER_URL

    client = RedisCluster.from_url(CLUSTER_URL.replace("redis+cluster://", "redis://"))
    primaries = sorted(f"{n.host}:{n.port}" for n in client.get_primaries())
    before = client.config_get("appendonly", target_nodes=RedisCluster.PRIMARIES)
    try:
        client.config_set("appendonly", "no", target_nodes=RedisCluster.PRIMARIES)
        problem = persistence_problem(client) or ""
        assert [part.split(": ", 1)[0] for part in problem.split("; ")] == primaries
        assert all("appendonly is off" in part for part in problem.split("; "))
        client.config_set("appendonly", "yes", target_nodes=RedisCluster.PRIMARIES)
        assert persistence_problem(client) is None
        # One primary left behind is named alone.
        first = client.get_node(
            host=primaries[0].split(":")[0], port=int(primaries[0].split(":")[1])
        )
        client.config_set("appendonly", "no", target_nodes=first)
        assert persistence_problem(client) == f"{primaries[0]}: " + (
            "appendonly is off: a restart loses every write since the last RDB snapshot"
        )
    finally:
        for node, config in before.items():
            host, port = node.rsplit(":", 1)
            client.config_set(
                "appendonly", config["appendonly"], target_nodes=client.get_node(host, int(port))
            )
        client.close()


def test_a_cluster_without_an_append_only_file_is_warned_about_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """What an operator sees: the warning in the log when the app starts on a cluster whose
    primaries keep no append-only file (it used to be checked on a single server only)."""
    from redis.cluster import RedisCluster

    from tests.conftest import CLUSTER_URL, TEST_KEYS

    client = RedisCluster.from_url(CLUSTER_URL.replace("redis+cluster://", "redis://"))
    before = client.config_get("appendonly", target_nodes=RedisCluster.PRIMARIES)
    try:
        client.config_set("appendonly", "no", target_nodes=RedisCluster.PRIMARIES)
        with caplog.at_level(logging.WARNING, logger="gateway.store.persistence"):
            app = create_app(
                {
                    "TESTING": True,
                    "REDIS_URL": CLUSTER_URL,
                    "REFGATE_DATA_DIR": str(tmp_path),
                    "REFGATE_SECRET_KEYS": TEST_KEYS,
                }
            )
            services_of(app).close()
        warnings = [
            message
            for r in caplog.records
            if r.name == "gateway.store.persistence"
            and "persistence" in (message := r.getMessage())
        ]
        assert len(warnings) == 1
        assert "appendonly is off" in warnings[0]
        for node in client.get_primaries():
            assert f"{node.host}:{node.port}" in warnings[0]
    finally:
        for node, config in before.items():
            host, port = node.rsplit(":", 1)
            client.config_set(
                "appendonly", config["appendonly"], target_nodes=client.get_node(host, int(port))
            )
        client.close()
