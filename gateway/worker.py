"""refgate's gunicorn worker: the threaded worker, noting how long each request queued and
shedding at the door when its queue is long.

gunicorn's ``gthread`` worker accepts connections on its main thread and hands each request to a
thread pool; when every thread is busy, requests wait in the pool's queue, out of sight of the
application. This worker

- stamps a request that is queued while every thread is busy (or already spoken for) and tells
  the admission control (:mod:`gateway.admission`) how long it waited when a thread picks it
  up, so the application sheds what queued too long (with the busy page, the API first). A
  request that an idle thread takes is not stamped: it may still start late when the machine is
  busy with other processes, but that is not this worker's backlog, and shedding it (a quiet
  server refusing the console's stylesheet because a batch job ran beside it) helps nobody;
- when the queue is already ``REFGATE_DOOR_QUEUE`` requests long (default 4), answers a
  request whose bytes have arrived with a canned ``503`` (``Retry-After``) on the main thread,
  without parsing it or taking a thread; the connection stays open when the request was one
  whole GET or HEAD (a click), else it is closed. A shed in the application costs nearly what
  a bare redirect does (HTTP parsing, WSGI); this one costs a read and a write, so a worker
  can refuse several times its capacity and go on serving what it admits;
- asks the kernel (``TCP_DEFER_ACCEPT``, Linux) to hand over a connection only once its first
  bytes have arrived, so the door sees the request it refuses (a connection accepted before
  its request arrives must be queued: closing it would reset it) and idle connections hold no
  thread;
- answers a request gunicorn cannot parse (a request line over its limit, a malformed header)
  in the API's error shape, JSON ``{"error", "message"}``, instead of gunicorn's HTML page: at
  that point no path is known, so one shape serves every client, and the API's clients (the
  only ones that send such requests on purpose) can read it.
"""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import threading
import time
from functools import partial
from typing import Any

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

from gateway.admission import RETRY_AFTER, UNSHED, set_queue_wait

SPEC = "gateway.worker.RefgateWorker"
_BODY = b"busy, try again\n"
_HEAD = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
    + f"Retry-After: {RETRY_AFTER}\r\nCache-Control: no-store\r\n".encode()
    + f"Content-Length: {len(_BODY)}\r\n".encode()
)
#: For one whole GET or HEAD without a body: the connection stays open (no reconnect storm).
SHED_KEEP = _HEAD + b"\r\n" + _BODY
#: For anything else: answered and closed.
SHED_CLOSE = _HEAD + b"Connection: close\r\n\r\n" + _BODY


#: Seconds the kernel holds a connection whose request has not arrived before handing it over.
DEFER_ACCEPT = 1


class RefgateWorker(ThreadWorker):  # type: ignore[misc]
    _door: int | None = None
    #: Threads handling a request now (the pool's own count of idle threads is private).
    _busy = 0

    def init_process(self) -> None:
        for listener in self.sockets:
            defer_accept(listener)
        # gunicorn's handle_error writes through this function and nothing else does; replaced
        # in this worker's process only (after the fork).
        util.write_error = write_json_error
        self._busy_lock = threading.Lock()
        super().init_process()

    def enqueue_req(self, conn: Any) -> None:
        door = self._door
        if door is None:
            services = getattr(self.wsgi, "extensions", {}).get("refgate")
            door = self._door = services.settings.door_queue if services is not None else 0
        # The executor's own queue: requests accepted and waiting for a thread.
        waiting = self.tpool._work_queue.qsize()
        if door and waiting >= door and self._shed(conn):
            return
        # Only a request that must wait for a thread is timed (see the module's docstring).
        saturated = self._busy + waiting >= self.cfg.threads
        conn.refgate_queued = time.monotonic() if saturated else None
        super().enqueue_req(conn)

    def handle(self, conn: Any) -> Any:
        queued = getattr(conn, "refgate_queued", None)
        set_queue_wait(0.0 if queued is None else time.monotonic() - queued)
        with self._busy_lock:
            self._busy += 1
        try:
            return super().handle(conn)
        finally:
            with self._busy_lock:
                self._busy -= 1

    def _shed(self, conn: Any) -> bool:
        """Answer 503 and close, if the request has arrived (else the thread pool waits for it:
        closing a connection before its request arrives would reset it)."""
        if self.cfg.is_ssl:
            return False  # TLS bytes cannot be answered unparsed (refgate sits behind a proxy)
        if conn.parser is not None and conn.parser.unreader.buf.getvalue():
            return False  # gunicorn read ahead into this request: let it finish parsing
        try:
            conn.sock.setblocking(False)
            # Peeked, not read: a probe or scrape is let through with its bytes where gunicorn
            # will read them.
            data = conn.sock.recv(65536, socket.MSG_PEEK)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if data and _probe(data):
            return False
        if data:
            with contextlib.suppress(OSError):
                conn.sock.recv(len(data))  # consumed: this request is answered here
            keep = (
                data.startswith((b"GET ", b"HEAD "))
                and data.endswith(b"\r\n\r\n")
                and data.count(b"\r\n\r\n") == 1
                and b"HTTP/1.1" in data[: data.find(b"\r\n")]
                and self.alive
                and self.cfg.keepalive > 0
            )
            try:
                conn.sock.send(SHED_KEEP if keep else SHED_CLOSE)
            except OSError:
                keep = False
            _count_shed(self.wsgi)
            if keep:
                # As gunicorn does after a kept-alive response: back to the poller.
                conn.set_timeout()
                self.keepalived_conns.append(conn)
                self.poller.register(
                    conn.sock,
                    selectors.EVENT_READ,
                    partial(self.on_client_socket_readable, conn),
                )
                return True
        self.nr_conns -= 1
        conn.close()
        return True


def write_json_error(sock: Any, status: int, reason: str, message: str) -> None:
    """gunicorn's error answer (its ``util.write_error``) as JSON: ``error`` is the reason in
    snake case, as the API names werkzeug's errors (``uri_too_long``), ``message`` gunicorn's
    description of what it could not parse."""
    body = json.dumps(
        {"error": reason.lower().replace(" ", "_"), "message": message or reason}
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        "Content-Type: application/json\r\nCache-Control: no-store\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


def _probe(data: bytes) -> bool:
    """Whether the request in ``data`` is a health probe or a metrics scrape (UNSHED)."""
    line = data[: data.find(b"\r\n")] if b"\r\n" in data else data[:256]
    parts = line.split(b" ")
    if len(parts) < 2 or parts[0] not in (b"GET", b"HEAD"):
        return False
    return parts[1].split(b"?", 1)[0].decode("latin-1") in UNSHED


def defer_accept(listener: Any) -> None:
    """Set TCP_DEFER_ACCEPT on a TCP listener where the platform has it (Linux)."""
    option = getattr(socket, "TCP_DEFER_ACCEPT", None)
    if option is None or listener.family not in (socket.AF_INET, socket.AF_INET6):
        return
    # An option, not a requirement: without it the door still works, just less often.
    with contextlib.suppress(OSError):
        listener.setsockopt(socket.IPPROTO_TCP, option, DEFER_ACCEPT)


def _count_shed(app: Any) -> None:
    services = getattr(app, "extensions", {}).get("refgate")
    if services is not None:
        services.metrics.shed("door")
