"""A Redis Cluster that cannot be reached when refgate starts: it degrades as on a single server.

redis-py's cluster client reads the slot map in its constructor; built eagerly, a cluster that
was down while a gunicorn worker started made the worker fail to boot, and gunicorn stopped the
whole server. These tests use the test cluster (``REFGATE_TEST_CLUSTER_URL``), reached at first
through an address where nothing listens yet.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from gateway.services import Services
from tests.conftest import CLUSTER_URL, TEST_KEYS, bearer, make_app, services_of
from tests.test_serve import free_port, refgate

pytestmark = pytest.mark.slow


class Forwarder:
    """Plain TCP forwarding from a local port to one cluster node, started when the test says:
    the cluster's address answers from then on (the client then learns the nodes' own
    addresses from the slot map)."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.port = port
        self.target = target
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []

    def start(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                near, _ = listener.accept()
            except OSError:
                return
            far = socket.create_connection(self.target)
            self._sockets += [near, far]
            for source, sink in ((near, far), (far, near)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


@pytest.fixture
def late_cluster() -> Iterator[Forwarder]:
    node = urlsplit(CLUSTER_URL.replace("redis+cluster://", "redis://"))
    forwarder = Forwarder(free_port(), (node.hostname or "127.0.0.1", node.port or 6379))
    yield forwarder
    forwarder.stop()


def test_an_app_started_while_the_cluster_is_down_degrades_then_recovers(
    tmp_path: Path, late_cluster: Forwarder
) -> None:
    app = make_app(tmp_path / "data", f"redis+cluster://127.0.0.1:{late_cluster.port}")
    services: Services = services_of(app)
    try:
        client = app.test_client()
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json is not None and ready.json["status"] == "degraded"
        campaigns = client.get("/api/v1/campaigns", headers=bearer("rgk_any"))
        assert campaigns.status_code == 503
        assert campaigns.json is not None and campaigns.json["error"] == "store_unavailable"

        late_cluster.start()
        deadline = time.monotonic() + 10
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "the app did not reach the cluster once it answered"
            time.sleep(0.2)
        plaintext, _ = services.api_keys.create("ops", "admin")
        listed = client.get("/api/v1/campaigns", headers=bearer(plaintext))
        assert listed.status_code == 200
    finally:
        services.close()


def test_serve_keeps_running_while_the_cluster_cannot_be_reached(
    tmp_path: Path, late_cluster: Forwarder
) -> None:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
        "REFGATE_DATA_DIR": str(tmp_path / "data"),
        "REFGATE_SECRET_KEYS": TEST_KEYS,
        "REDIS_URL": f"redis+cluster://127.0.0.1:{late_cluster.port}",
    }
    command = [sys.executable, "-c", "from gateway.cli import main; main()", "serve"]
    server = subprocess.Popen(
        [*command, "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"

    def status(path: str) -> int:
        try:
            with urllib.request.urlopen(base + path, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            return 0

    try:
        deadline = time.monotonic() + 30
        while status("/healthz") != 200:
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            assert time.monotonic() < deadline, "refgate serve did not answer"
            time.sleep(0.2)
        # Workers booted and stay up (gunicorn stops the server when one fails to boot).
        time.sleep(3)
        assert server.poll() is None, server.stdout.read() if server.stdout else ""
        assert status("/readyz") == 503
        # The CLI says the store is unavailable, in one line.
        listed = refgate("apikey", "list", env=env)
        assert listed.returncode == 2
        assert "the store is unavailable" in listed.stderr and "Traceback" not in listed.stderr

        late_cluster.start()
        deadline = time.monotonic() + 20
        while status("/readyz") != 200:
            assert time.monotonic() < deadline, "refgate serve did not reach the cluster"
            time.sleep(0.2)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            raise


def test_readyz_on_a_cluster_asks_every_primary(tmp_path: Path) -> None:
    """One primary not answering (paused here, as a hung or failing node would be) is a
    degraded store: the campaigns in its slots cannot record their clicks."""
    from redis.cluster import RedisCluster

    app = make_app(tmp_path / "data", CLUSTER_URL)
    services: Services = services_of(app)
    admin = RedisCluster.from_url(CLUSTER_URL.replace("redis+cluster://", "redis://"))
    try:
        client = app.test_client()
        assert client.get("/readyz").status_code == 200
        # A primary other than the one the URL names (the client's default node).
        start = urlsplit(CLUSTER_URL.replace("redis+cluster://", "redis://"))
        other = next(
            node
            for node in admin.get_primaries()
            if (node.host, node.port) != (start.hostname, start.port)
        )
        admin.execute_command("CLIENT PAUSE", 1500, "ALL", target_nodes=other)
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json is not None and ready.json["status"] == "degraded"
        time.sleep(1.6)
        assert client.get("/readyz").status_code == 200
    finally:
        admin.close()
        services.close()
