"""The baseline: a plain Flask app answering the same 302 as the gateway, doing no work."""

from __future__ import annotations

from flask import Flask
from werkzeug.wrappers import Response

app = Flask(__name__)
LOCATION = "https://shop.example.com/landing?src=share&rg_click=1.baseline"


@app.get("/s/<token>")
def click(token: str) -> Response:
    return Response(status=302, headers={"Location": LOCATION, "Cache-Control": "no-store"})
