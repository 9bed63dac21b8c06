"""The refgate command line: API keys and demo data."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from gateway.cli import cli
from gateway.settings import SettingsError
from gateway.store import keys
from tests.conftest import bearer, services_of


def test_apikey_create_prints_only_the_key(runner: FlaskCliRunner, app: Flask) -> None:
    result = runner.invoke(args=["apikey", "create", "--role", "marketing", "--name", "crm"])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert key.startswith("rgk_") and "\n" not in key
    assert app.test_client().get("/api/v1/campaigns", headers=bearer(key)).status_code == 200
    # Only a digest is stored.
    stored = app.extensions["refgate"].store.main.hgetall("rg:api-keys")
    assert all(key.encode() not in value for value in stored.values())


def test_apikey_create_rejects_bad_input(runner: FlaskCliRunner) -> None:
    bad_role = runner.invoke(args=["apikey", "create", "--role", "root", "--name", "x"])
    assert bad_role.exit_code == 2 and "root" in bad_role.output
    no_name = runner.invoke(args=["apikey", "create", "--role", "risk"])
    assert no_name.exit_code == 2 and "--name" in no_name.output
    blank = runner.invoke(args=["apikey", "create", "--role", "risk", "--name", "  "])
    assert blank.exit_code == 2 and "name" in blank.output
    listed = runner.invoke(args=["apikey", "list"])
    assert listed.stdout == ""


def test_apikey_list_and_disable(runner: FlaskCliRunner, app: Flask) -> None:
    key = runner.invoke(
        args=["apikey", "create", "--role", "risk", "--name", "analyst"]
    ).stdout.strip()
    listed = runner.invoke(args=["apikey", "list"]).stdout
    key_id = listed.split("\t")[0]
    assert "risk\tactive\tanalyst" in listed
    assert runner.invoke(args=["apikey", "disable", key_id]).exit_code == 0
    assert "disabled" in runner.invoke(args=["apikey", "list"]).stdout
    assert app.test_client().get("/api/v1/campaigns", headers=bearer(key)).status_code == 401
    missing = runner.invoke(args=["apikey", "disable", "nope"])
    assert missing.exit_code == 1 and "no API key" in missing.output


def test_demo_seeds_a_working_link(runner: FlaskCliRunner, app: Flask) -> None:
    result = runner.invoke(cli, ["demo", "--no-traffic"])
    assert result.exit_code == 0, result.output
    link = next(line.split()[-1] for line in result.stdout.splitlines() if "link of alice" in line)
    client = app.test_client()
    response = client.get(
        link.replace("https://go.example.test", ""), headers={"Accept-Language": "en"}
    )
    assert response.status_code == 302
    again = runner.invoke(cli, ["demo", "--no-traffic"])
    assert again.exit_code == 0
    assert "demo traffic" not in result.stdout + again.stdout
    key = next(line.split()[-1] for line in again.stdout.splitlines() if "admin API key" in line)
    campaigns = client.get("/api/v1/campaigns", headers=bearer(key)).json["campaigns"]
    assert [c["slug"] for c in campaigns] == ["milk-tea"]
    # The console account it prints signs in, and a second run keeps its password.
    logins = [
        line.split()
        for out in (result.stdout, again.stdout)
        for line in out.splitlines()
        if "@demo.refgate.example" in line
    ]
    assert len(logins) == 2 and logins[0] == logins[1]
    email, _, password, _ = logins[0]
    services = services_of(app)
    assert services.users.verify(email, password) is not None
    assert services.users.require(email).role == "admin"
    # An operator disabled the account: a later demo leaves it so, and says so.
    services.users.set_disabled(email, True)
    disabled = runner.invoke(cli, ["demo", "--no-traffic"])
    assert disabled.exit_code == 0 and f"{email} is disabled" in disabled.stdout
    assert password not in disabled.stdout and services.users.require(email).disabled


WECHAT_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN"
)


def test_demo_plays_a_simulated_festival_once(runner: FlaskCliRunner, app: Flask) -> None:
    services = services_of(app)
    limits = (services.gateway.rate_limit_prefix, services.gateway.rate_limit_token)
    result = runner.invoke(cli, ["demo"])
    assert result.exit_code == 0, result.output
    assert "demo traffic:" in result.stdout and "flags to review" in result.stdout
    key = next(line.split()[-1] for line in result.stdout.splitlines() if "admin API key" in line)
    client = app.test_client()
    stats = client.get("/api/v1/campaigns/milk-tea/stats", headers=bearer(key)).json
    # The simulation's clicks went through the click path and its sign-ups through the
    # conversion service: counted, scored (some denied credit), in the tree and the ledger.
    assert stats["clicks"] > 1000 and stats["decisions"]["deny_credit"] > 100
    assert stats["tree"]["conversions"] > 100
    assert stats["budget"]["spent"] > 0 and stats["budget"]["held"] > 0
    assert not stats["budget"]["exhausted"]
    # Moved in time to end minutes ago: the last 48 hours' timeline holds most of them.
    clicks_by_hour = services.store.main.hgetall(
        keys.campaign_keys(services.campaigns.require("milk-tea").id).timeline
    )
    now_hour = int(time.time()) // 3600
    recent = sum(
        int(count)
        for field, count in clicks_by_hour.items()
        if field.endswith(b"|clicks") and now_hour - int(field.split(b"|")[0]) < 48
    )
    assert recent > stats["clicks"] // 2
    # The detectors raised every kind of flag for review.
    flags = client.get("/api/v1/flags?campaign=milk-tea&limit=500", headers=bearer(key)).json
    assert {"referrer", "participant", "cluster"} <= {f["kind"] for f in flags["flags"]}
    # README's examples of reading the ledger and the tree, run against the demo as written.
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    examples = re.findall(
        r"http://127\.0\.0\.1:8080(/api/v1/(?:rewards\?campaign=milk-tea|campaigns/milk-tea/"
        r"(?:tree|ancestors)/|people/)[^\"\s]*)",
        readme,
    )
    assert len(examples) == 4
    for example in examples:
        answer = client.get(example, headers=bearer(key))
        assert answer.status_code == 200, (example, answer.json)
        found = answer.json
        assert (
            found.get("rewards")
            or found.get("ancestors")
            or found.get("children")
            or found.get("campaigns")
        ), example
    # The services serve as before: pages are drawn again, flood limits are back.
    assert (services.gateway.rate_limit_prefix, services.gateway.rate_limit_token) == limits
    link = next(line.split()[-1] for line in result.stdout.splitlines() if "link of alice" in line)
    page = client.get(
        link.replace("https://go.example.test", ""), headers={"User-Agent": WECHAT_UA}
    )
    assert page.status_code == 200 and b"<html" in page.data
    # Once: a second start finds the clicks and plays nothing more.
    again = runner.invoke(cli, ["demo"])
    assert again.exit_code == 0 and "demo traffic" not in again.stdout
    services.recorder.flush()
    after = client.get("/api/v1/campaigns/milk-tea/stats", headers=bearer(key)).json
    assert after["clicks"] == stats["clicks"] + 1  # the WeChat visit above


def test_serve_workers_default_to_the_cpus_this_process_may_use() -> None:
    """Pinned to one CPU (as a container's cpuset or a taskset pins it), two workers, not two
    per CPU of the host."""
    result = subprocess.run(
        [
            "taskset",
            "-c",
            "0",
            sys.executable,
            "-c",
            "from gateway.cli import default_workers; print(default_workers())",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    assert result.stdout.strip() == "2"


def test_serve_starts_on_a_machine_of_many_cpus(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """48 CPUs: the default is the most workers --workers allows, not a value it refuses (the
    container, which passes no --workers, did not start). The configuration error shows that
    the options were accepted and serve went on to read its settings."""
    from click.testing import CliRunner

    from gateway.cli import MAX_WORKERS, default_workers

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(48)))
    assert default_workers() == MAX_WORKERS
    result = CliRunner().invoke(
        cli,
        ["serve", "--port", "8199"],
        env={"REFGATE_DATA_DIR": str(tmp_path), "REFGATE_PUBLIC_URL": "ftp://x"},
    )
    assert "--workers" not in result.output
    assert isinstance(result.exception, SettingsError)
    assert result.exception.name == "REFGATE_PUBLIC_URL"
