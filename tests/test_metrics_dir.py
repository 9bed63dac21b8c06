"""`refgate serve`'s metrics directory is emptied at start, the operator's too, safely: a
previous run's worker files would be added in at every scrape (prometheus-client's docs: the
directory must be wiped between runs)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.metrics import MULTIPROC_ENV
from gateway.server import prepare_metrics_dir

ROOT = Path(__file__).resolve().parent.parent

#: A refgate process counting in multiprocess mode: five door sheds, then (with an argument)
#: it waits for its stdin to close.
WRITER = """
import sys
from gateway.metrics import Metrics
metrics = Metrics()
for _ in range(5):
    metrics.shed("door")
print("written", flush=True)
if len(sys.argv) > 1:
    sys.stdin.read()
"""


def writer(directory: Path, *args: str) -> subprocess.Popen[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        MULTIPROC_ENV: str(directory),
    }
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, *args],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "written"
    return process


def door_sheds(directory: Path) -> float:
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    value = registry.get_sample_value("refgate_shed_requests_total", {"kind": "door"})
    return value or 0.0


def test_an_operators_directory_loses_the_files_of_an_earlier_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    metrics_dir = tmp_path / "prom"
    metrics_dir.mkdir()
    for _ in range(2):  # two workers of a previous run, gone
        writer(metrics_dir).wait(timeout=30)
    assert door_sheds(metrics_dir) == 10
    monkeypatch.setenv(MULTIPROC_ENV, str(metrics_dir))
    caplog.set_level(logging.INFO, logger="gateway.server")

    assert prepare_metrics_dir(tmp_path / "data") == metrics_dir
    assert list(metrics_dir.iterdir()) == []
    assert door_sheds(metrics_dir) == 0
    assert os.environ[MULTIPROC_ENV] == str(metrics_dir)
    assert any("metrics files of an earlier run" in r.getMessage() for r in caplog.records)
    # Only the operator's directory was used: the data dir's own was not made.
    assert not (tmp_path / "data" / "metrics").exists()


def test_a_directory_that_holds_anything_else_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Pointed at a directory that is not only metrics (a typo, /var/lib, a home), nothing in it
    is removed: an error says why, and the server still starts."""
    metrics_dir = tmp_path / "shared"
    metrics_dir.mkdir()
    writer(metrics_dir).wait(timeout=30)
    (metrics_dir / "notes.txt").write_text("mine")
    (metrics_dir / "sub").mkdir()
    before = sorted(p.name for p in metrics_dir.iterdir())
    monkeypatch.setenv(MULTIPROC_ENV, str(metrics_dir))

    prepare_metrics_dir(tmp_path / "data")
    assert sorted(p.name for p in metrics_dir.iterdir()) == before
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "notes.txt" in errors[0] and "not cleared" in errors[0]


def test_files_a_running_refgate_process_writes_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Two servers given the same directory: the second to start must not wipe the files of
    the first one's live workers."""
    metrics_dir = tmp_path / "prom"
    metrics_dir.mkdir()
    live = writer(metrics_dir, "wait")
    try:
        monkeypatch.setenv(MULTIPROC_ENV, str(metrics_dir))
        prepare_metrics_dir(tmp_path / "data")
        assert door_sheds(metrics_dir) == 5
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1 and str(live.pid) in errors[0] and "in use" in errors[0]
    finally:
        live.communicate(timeout=30)


def test_without_one_the_data_dirs_directory_is_made_afresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Set empty (not configured) rather than deleted: monkeypatch then restores the variable
    # that prepare_metrics_dir sets, which would otherwise point every later test's metrics
    # at this test's deleted directory (/metrics lost its counters in tests/test_outage.py).
    monkeypatch.setenv(MULTIPROC_ENV, "")
    monkeypatch.setenv(MULTIPROC_ENV.lower(), "")
    stale = tmp_path / "data" / "metrics"
    stale.mkdir(parents=True)
    writer(stale).wait(timeout=30)
    assert prepare_metrics_dir(tmp_path / "data") == stale
    assert list(stale.iterdir()) == []
    assert os.environ[MULTIPROC_ENV] == str(stale)
