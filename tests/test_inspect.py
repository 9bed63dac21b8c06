"""POST /api/v1/inspect: how a request is classified."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.test_platform_policy import WECHAT_IOS


def inspect(client: FlaskClient, admin: dict[str, str], **body: object) -> dict:  # type: ignore[type-arg]
    response = client.post("/api/v1/inspect", json=body, headers=admin)
    assert response.status_code == 200, response.json
    return response.json  # type: ignore[return-value]


def test_wechat_on_a_phone(client: FlaskClient, admin: dict[str, str]) -> None:
    found = inspect(
        client, admin, ua=WECHAT_IOS, ip="203.0.113.9", headers={"Accept-Language": "zh-CN"}
    )
    assert found["platform"]["key"] == "wechat" and found["platform"]["in_app"] is True
    assert found["platform"]["default_strategy"] == "qr_first"
    assert found["os"] == "ios" and found["mobile"] is True and found["bot"] == ""
    assert found["network"] == {"class": "", "prefix": "203.0.113.0/24"}
    assert found["signals"] == []


def test_a_script_from_a_datacenter(client: FlaskClient, admin: dict[str, str]) -> None:
    # 3.5.0.0/16 (AWS) is in the datacenter list.
    found = inspect(client, admin, ua="python-requests/2.31.0", ip="3.5.140.2")
    assert found["bot"] == "crawler" and found["platform"]["key"] == "bot"
    assert found["network"]["class"] == "datacenter"
    detectors = {s["detector"] for s in found["signals"]}
    assert {"crawler", "network", "headers"} <= detectors


def test_hints_that_contradict_the_user_agent(client: FlaskClient, admin: dict[str, str]) -> None:
    found = inspect(
        client,
        admin,
        ua="Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        headers={
            "Accept-Language": "en",
            "Sec-CH-UA-Platform": '"Windows"',
            "Sec-CH-UA": '"Chromium";v="124"',
        },
    )
    reasons = [s["reason"] for s in found["signals"]]
    assert any("client hints" in reason for reason in reasons)


def test_bad_input(client: FlaskClient, admin: dict[str, str]) -> None:
    for body, field in (
        ({"ua": 5}, "ua"),
        ({"ip": "x" * 65}, "ip"),
        ({"headers": {"a": 1}}, "headers.a"),
        ({"extra": True}, "extra"),
    ):
        response = client.post("/api/v1/inspect", json=body, headers=admin)
        assert response.status_code == 400, body
        assert field in response.json["fields"], response.json
