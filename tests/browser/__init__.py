"""Real browsers for tests: Debian's Chromium driven by Playwright, and an app served over HTTP.

``playwright install`` cannot download here, so the browser is the system's
(``REFGATE_TEST_CHROMIUM``, default /usr/bin/chromium). A missing browser fails the test with a
message saying how to install it: nothing is skipped. Screenshots go to ``artifact_dir()``
(``REFGATE_TEST_ARTIFACTS``, default ``test-artifacts/`` at the top of the checkout).
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask
from playwright.sync_api import Browser, sync_playwright
from werkzeug.serving import make_server

CHROMIUM = Path(os.environ.get("REFGATE_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def artifact_dir(*parts: str) -> Path:
    default = Path(__file__).resolve().parents[2] / "test-artifacts"
    path = Path(os.environ.get("REFGATE_TEST_ARTIFACTS", default)).joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def chromium(*extra_args: str) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        raise RuntimeError(
            f"no Chromium at {CHROMIUM}: install Debian's (apt-get install -y chromium) or point "
            "REFGATE_TEST_CHROMIUM at one; .ci/run installs it"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *extra_args]
        )
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def serving(app: Flask, port: int) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1:``port`` in a thread; yields its base URL."""
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)
