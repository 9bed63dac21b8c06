"""The container's contract with its orchestrator, read from the Dockerfile (no daemon needed)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_health_check_allows_the_embedded_store_to_load() -> None:
    """The embedded store loads its AOF before the server listens (minutes after a busy day):
    failed checks then must not count, or the container is restarted mid-load."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    healthcheck = re.search(r"^HEALTHCHECK (.*)$", dockerfile, re.MULTILINE)
    assert healthcheck is not None
    start = re.search(r"--start-period=(\d+)s", healthcheck.group(1))
    assert start is not None and int(start.group(1)) >= 60
    assert "/healthz" in dockerfile  # not /readyz: the gateway serves while its store is down


def test_local_data_stays_out_of_the_build_context() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {"instance", "refgate-data", ".venv", ".git"} <= ignored
