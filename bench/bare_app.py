"""The baselines: a plain Flask app answering the same 302 as the gateway, doing no work
(``app``), and the same app touching the store once per request, as any design that records
a click in Redis must, with nothing else (``store_app``): the floor of the click path."""

from __future__ import annotations

import os
import threading

from flask import Flask
from hiredis import pack_command
from redis.connection import ConnectionPool
from werkzeug.wrappers import Response

app = Flask(__name__)
LOCATION = "https://shop.example.com/landing?src=share&rg_click=1.baseline"


@app.get("/s/<token>")
def click(token: str) -> Response:
    return Response(status=302, headers={"Location": LOCATION, "Cache-Control": "no-store"})


store_app = Flask(__name__)
_local = threading.local()
#: One INCR: the cheapest write, sent and read as gateway.store.clickstore sends its one call
#: (a connection per thread, a pre-packed command, no pool or retry layers).
_INCR = [pack_command(("INCR", "{bench}:bare-clicks"))]


@store_app.get("/s/<token>")
def click_and_count(token: str) -> Response:
    connection = getattr(_local, "connection", None)
    if connection is None:
        pool = ConnectionPool.from_url(os.environ["REDIS_URL"])
        connection = _local.connection = pool.connection_class(**pool.connection_kwargs)
    connection.send_packed_command(_INCR, check_health=False)
    connection.read_response()
    return Response(status=302, headers={"Location": LOCATION, "Cache-Control": "no-store"})
