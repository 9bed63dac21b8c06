"""The refgate command line: API keys and demo data."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskCliRunner

from gateway.cli import cli
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
    result = runner.invoke(cli, ["demo"])
    assert result.exit_code == 0, result.output
    link = next(line.split()[-1] for line in result.stdout.splitlines() if "link of alice" in line)
    client = app.test_client()
    response = client.get(
        link.replace("https://go.example.test", ""), headers={"Accept-Language": "en"}
    )
    assert response.status_code == 302
    again = runner.invoke(cli, ["demo"])
    assert again.exit_code == 0
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
