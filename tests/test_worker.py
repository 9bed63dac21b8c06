"""refgate's gunicorn worker refuses at the door: with its queue full, a request that has arrived
is answered 503 + Retry-After on the main thread, the connection kept for a whole GET (no
reconnect storm) and closed otherwise; admitted requests are served normally."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from gateway.admission import RETRY_AFTER
from tests.test_serve import free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def worker(threads: int) -> Iterator[int]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "tests.slow_wsgi:app",
            "--bind", f"127.0.0.1:{port}",
            "--worker-class", "gateway.worker.RefgateWorker",
            "--workers", "1",
            "--threads", str(threads),
            "--keep-alive", "5",
            "--no-control-socket",
        ],
        cwd=str(ROOT),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("gunicorn did not start") from None
                time.sleep(0.1)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        assert process.returncode == 0, process.stderr.read() if process.stderr else ""


def exchange(sock: socket.socket, request: bytes) -> bytes:
    """Send one request and read one whole response (headers and Content-Length body)."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def occupy(port: int) -> list[socket.socket]:
    """One slow request in the worker's only thread and two queued: the door (2) is reached.
    Sent apart, so the thread has taken the first before the others queue."""
    busy = []
    for _ in range(3):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(get("/?1.5"))
        busy.append(sock)
        time.sleep(0.3)
    return busy


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: refgate.test\r\n\r\n".encode()


def test_a_full_queue_is_refused_at_the_door_and_admitted_requests_are_served() -> None:
    with worker(threads=1) as port:
        # One request in the thread and two queued (the door is at 2) keep the worker busy.
        busy = occupy(port)
        answers: list[bytes] = []
        shed_socket: socket.socket | None = None
        lock = threading.Lock()

        def knock() -> None:
            nonlocal shed_socket
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            answer = exchange(sock, get("/"))
            with lock:
                answers.append(answer)
                if answer.startswith(b"HTTP/1.1 503") and shed_socket is None:
                    shed_socket = sock
                    return
            sock.close()

        knockers = [threading.Thread(target=knock) for _ in range(8)]
        for thread in knockers:
            thread.start()
        for thread in knockers:
            thread.join(timeout=20)
        shed = [a for a in answers if a.startswith(b"HTTP/1.1 503")]
        assert len(answers) == 8
        assert shed, "nothing was refused at the door while the queue was full"
        assert all(a.startswith((b"HTTP/1.1 503", b"HTTP/1.1 200")) for a in answers)
        first = shed[0]
        assert f"Retry-After: {RETRY_AFTER}".encode() in first
        assert b"Connection: close" not in first and first.endswith(b"busy, try again\n")
        # The refused click's connection stays open: once the worker is free it is served.
        for sock in busy:
            assert exchange(sock, b"").startswith(b"HTTP/1.1 200")
            sock.close()
        assert shed_socket is not None
        time.sleep(0.3)  # the closed connections above are the worker's last work items
        assert exchange(shed_socket, get("/")).startswith(b"HTTP/1.1 200")
        shed_socket.close()


def test_a_refused_request_with_a_body_is_answered_and_closed() -> None:
    with worker(threads=1) as port:
        busy = occupy(port)
        posted = b""
        for _ in range(10):  # until one arrives before the worker takes it off the listen queue
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            posted = exchange(
                sock,
                b"POST /api/v1/conversions HTTP/1.1\r\nHost: refgate.test\r\n"
                b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
            )
            if posted.startswith(b"HTTP/1.1 503"):
                assert sock.recv(1) == b""  # closed by the worker
                sock.close()
                break
            sock.close()
        assert posted.startswith(b"HTTP/1.1 503") and b"Connection: close" in posted
        for sock in busy:
            assert exchange(sock, b"").startswith(b"HTTP/1.1 200")
            sock.close()


def test_probes_and_scrapes_pass_the_door_when_the_queue_is_full() -> None:
    with worker(threads=1) as port:
        busy = occupy(port)
        refused = socket.create_connection(("127.0.0.1", port), timeout=10)
        assert exchange(refused, get("/")).startswith(b"HTTP/1.1 503")
        refused.close()
        # Health probes and metrics scrapes are never shed: they wait their turn instead.
        probes = [socket.create_connection(("127.0.0.1", port), timeout=15) for _ in range(2)]
        probes[0].sendall(get("/healthz"))
        probes[1].sendall(get("/metrics"))
        for sock in busy:
            assert exchange(sock, b"").startswith(b"HTTP/1.1 200")
            sock.close()
        for sock in probes:
            answer = exchange(sock, b"")
            assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"ok"), answer
            sock.close()


def body(answer: bytes) -> bytes:
    return answer.partition(b"\r\n\r\n")[2]


def test_only_a_request_that_waited_for_a_thread_is_timed_for_shedding() -> None:
    """Admission control sheds what queued too long: a request is timed only when every thread
    was busy. An idle thread that starts late (here the GIL is held by a request in the other
    thread; in production, other processes on the machine) is not the worker's backlog."""
    with worker(threads=3) as port:
        # Three threads: one spins, and one may still be closing the fixture's probe connection
        # (handed over late under TCP_DEFER_ACCEPT); a third is idle.
        spinning = socket.create_connection(("127.0.0.1", port), timeout=10)
        spinning.sendall(get("/spin?1.0"))
        time.sleep(0.2)  # the spin has a thread and the GIL
        started = time.monotonic()
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        answer = exchange(sock, get("/wait"))
        assert time.monotonic() - started > 0.15, "the idle thread should have started late"
        assert answer.startswith(b"HTTP/1.1 200") and body(answer) == b"0.000", answer
        sock.close()
        assert exchange(spinning, b"").startswith(b"HTTP/1.1 200")
        spinning.close()

    with worker(threads=1) as port:
        # The only thread is busy for 0.6 s: the next request waits for it, and says so.
        sleeping = socket.create_connection(("127.0.0.1", port), timeout=10)
        sleeping.sendall(get("/?0.6"))
        time.sleep(0.2)
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        answer = exchange(sock, get("/wait"))
        assert answer.startswith(b"HTTP/1.1 200") and float(body(answer)) >= 0.3, answer
        sock.close()
        assert exchange(sleeping, b"").startswith(b"HTTP/1.1 200")
        sleeping.close()


@pytest.mark.parametrize(
    ("request_bytes", "status", "error"),
    [
        (
            b"GET /api/v1/campaigns?" + b"x" * 5000 + b" HTTP/1.1\r\nHost: r\r\n\r\n",
            414,
            "uri_too_long",
        ),
        (b"GET /api/v1/campaigns HTTP/1.1\r\nHost: r\r\nBad Header\r\n\r\n", 400, "bad_request"),
        (b"GET /api/v1/campaigns HTTP/9.1\r\nHost: r\r\n\r\n", 400, "bad_request"),
    ],
    ids=["request line over the limit", "malformed header", "unknown HTTP version"],
)
def test_a_request_gunicorn_cannot_parse_is_answered_in_the_api_error_shape(
    request_bytes: bytes, status: int, error: str
) -> None:
    """gunicorn refuses these before any application sees them; its answer is JSON like every
    API error, not an HTML page an API client cannot read."""
    with worker(threads=1) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        answer = exchange(sock, request_bytes)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode()), head
    assert b"Content-Type: application/json" in head and b"Connection: close" in head
    parsed = json.loads(body)
    assert parsed["error"] == error and parsed["message"], parsed


def test_a_request_gunicorn_cannot_parse_is_logged_without_the_clients_address() -> None:
    """gunicorn logs "Invalid request from ip=<address>" at warning level for each request it
    cannot parse, which anyone can send: refgate's logger writes the network prefix instead
    (README: raw addresses are kept nowhere; salted hashes and prefixes)."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "tests.slow_wsgi:app",
            "--bind", f"127.0.0.1:{port}",
            "--worker-class", "gateway.worker.RefgateWorker",
            "--workers", "1",
            "--logger-class", "gateway.server.GunicornLogger",
            "--no-control-socket",
        ],
        cwd=str(ROOT),
        env={**os.environ, "PYTHONPATH": str(ROOT), "REFGATE_LOG_FORMAT": "text"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("gunicorn did not start") from None
                time.sleep(0.1)
        for request in (
            b"GET /?" + b"x" * 5000 + b" HTTP/1.1\r\nHost: r\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: r\r\nBad Header\r\n\r\n",
        ):
            with socket.create_connection(("127.0.0.1", port)) as sock:
                assert exchange(sock, request).startswith(b"HTTP/1.1 4")
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=30)
    lines = [line for line in errors.splitlines() if "Invalid request from" in line]
    assert len(lines) == 2, errors
    assert all("ip=127.0.0.0/24: " in line and "127.0.0.1" not in line for line in lines), lines
