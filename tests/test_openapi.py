"""The OpenAPI document matches the routes, and the API survives schemathesis without a 5xx."""

from __future__ import annotations

import re
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings

from gateway.openapi_webhooks import data_schema_name
from gateway.webhooks import EVENTS, SIGNATURE_HEADER, USER_AGENT
from tests.conftest import bearer


def test_document_lists_exactly_the_api_routes(client: Any, app: Flask) -> None:
    document = client.get("/api/v1/openapi.json").json
    assert document["openapi"] == "3.1.0"
    documented = {
        (method.upper(), "/api/v1" + re.sub(r"\{(\w+)\}", r"<\1>", path))
        for path, item in document["paths"].items()
        for method in item
        if method != "parameters"
    }
    routed = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    assert documented == routed


def test_webhooks_describe_every_event_refgate_delivers(client: Any) -> None:
    """One ``webhooks`` entry per event in EVENTS, each the envelope with that event's ``data``
    (tests/test_webhooks.py validates real deliveries against them), its headers and what the
    receiver's answer means."""
    document = client.get("/api/v1/openapi.json").json
    assert set(document["webhooks"]) == set(EVENTS)
    schemas = document["components"]["schemas"]
    assert schemas["WebhookEnvelope"]["properties"]["type"]["enum"] == list(EVENTS)
    for event, item in document["webhooks"].items():
        assert list(item) == ["post"]
        operation = item["post"]
        assert operation["security"] == []  # signed, not authenticated by an API key
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        envelope, overlay = body["allOf"]
        assert envelope == {"$ref": "#/components/schemas/WebhookEnvelope"}
        assert overlay["properties"]["type"] == {"const": event}
        data = overlay["properties"]["data"]["$ref"].removeprefix("#/components/schemas/")
        assert data == data_schema_name(event) and schemas[data]["description"]
        headers = {p["name"]: p for p in operation["parameters"] if p["in"] == "header"}
        assert set(headers) == {
            SIGNATURE_HEADER,
            "Refgate-Event-Id",
            "Refgate-Event-Type",
            "Refgate-Delivery-Attempt",
            "User-Agent",
        }
        assert headers["Refgate-Event-Type"]["schema"]["const"] == event
        assert headers["User-Agent"]["schema"]["const"] == USER_AGENT
        assert set(operation["responses"]) == {"2XX", "default"}
    operations = [
        operation["operationId"]
        for section in ("paths", "webhooks")
        for item in document[section].values()
        for method, operation in item.items()
        if method != "parameters"
    ]
    assert len(operations) == len(set(operations))
    invalid = [name for name, schema in schemas.items() if not jsonschema_rs.meta.is_valid(schema)]
    assert invalid == []


def test_every_operation_declares_the_headers_its_errors_carry(client: Any) -> None:
    # A generated client learns from the document that a 503 says when to retry and a 401 how
    # to authenticate; the answers carry them (an outage's 503: tests/test_outage.py).
    document = client.get("/api/v1/openapi.json").json
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method == "parameters" or path == "/openapi.json":
                continue
            responses = operation["responses"]
            retry = responses["503"]["headers"]["Retry-After"]
            assert retry["required"] and retry["schema"]["type"] == "integer", (method, path)
            if "401" in responses:
                assert responses["401"]["headers"]["WWW-Authenticate"]["required"]
    unauthenticated = client.get("/api/v1/campaigns")
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["WWW-Authenticate"].startswith("Bearer")


def test_documented_paging_bounds_are_the_enforced_ones(
    client: Any, keys: dict[str, str], campaign: dict[str, Any]
) -> None:
    document = client.get("/api/v1/openapi.json").json
    admin = bearer(keys["admin"])
    for path, name, url in (
        ("/rewards", "offset", f"/api/v1/rewards?campaign={campaign['slug']}&offset="),
        ("/flags", "offset", "/api/v1/flags?offset="),
        (
            "/campaigns/{slug}/tree/{participant}",
            "cursor",
            f"/api/v1/campaigns/{campaign['slug']}/tree/y?cursor=",
        ),
    ):
        params = {p["name"]: p for p in document["paths"][path]["get"]["parameters"]}
        bound = params[name]["schema"]["maximum"]
        over = client.get(f"{url}{bound + 1}", headers=admin)
        assert over.status_code == 400 and name in over.json["fields"], path
        assert client.get(f"{url}{bound}", headers=admin).status_code != 400, path


#: A body over the 2 MiB limit is rejected with 413 (documented); schemathesis does not count 413
#: as a rejection by default, and a 350,000-character logo of random Unicode is over the limit.
CONFIG = """
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428",
                     "429", "5xx"]
"""


@pytest.fixture
def api_schema(app: Flask, keys: dict[str, str], campaign: dict[str, Any]) -> Any:
    config = schemathesis.config.SchemathesisConfig.from_str(CONFIG)
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, config=config)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_and_never_fails(case: Any, keys: dict[str, str]) -> None:
    # Every check runs except "schema-valid data must be accepted": destinations and windows have
    # rules (no IP hosts, ends after starts, unique slugs) that JSON Schema cannot state.
    # A query parameter generated as an empty array (or null) vanishes when the URL is encoded,
    # so a "negative" case built on it would really send a valid request: send it as an empty
    # value, which is what a client can actually send.
    if case.query:
        for name, value in list(case.query.items()):
            if value is None or value == []:
                case.query[name] = ""
    case.call_and_validate(
        headers=bearer(keys["admin"]),
        excluded_checks=[schemathesis.checks.positive_data_acceptance],
    )
