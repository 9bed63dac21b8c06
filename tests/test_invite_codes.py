"""Invite codes: stateless, typo-catching, and GET /c/<code> sends people to the current link."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st

from gateway.invites import (
    ALPHABET,
    CHECK_SYMBOLS,
    INVITE_CODE_PATTERN,
    InvalidCode,
    invite_code,
    parse_invite_code,
)
from gateway.services import Services
from tests.conftest import BROWSER

ids = st.integers(min_value=0, max_value=10**12)


@given(campaign=ids, referrer=ids)
def test_codes_round_trip_and_match_the_documented_pattern(campaign: int, referrer: int) -> None:
    code = invite_code(campaign, referrer)
    assert re.fullmatch(INVITE_CODE_PATTERN, code)
    assert parse_invite_code(code) == (campaign, referrer)
    # People type them any way: lower case, no dashes, O for 0, I or L for 1.
    sloppy = code.lower().replace("-", "").replace("0", "o").replace("1", "l")
    assert parse_invite_code(sloppy) == (campaign, referrer)


def test_small_ids_give_short_grouped_codes() -> None:
    assert invite_code(1, 1) == "0000-33"
    assert re.fullmatch(r"[0-9A-Z]{4}-[0-9A-Z]{2}", invite_code(3, 1000))
    assert len(invite_code(12, 99_999).replace("-", "")) == 8
    assert len({invite_code(c, r) for c in range(1, 30) for r in range(1, 300)}) == 29 * 299


@given(campaign=ids, referrer=ids, data=st.data())
def test_every_single_wrong_symbol_is_caught(
    campaign: int, referrer: int, data: st.DataObject
) -> None:
    symbols = invite_code(campaign, referrer).replace("-", "")
    position = data.draw(st.integers(0, len(symbols) - 1))
    pool = CHECK_SYMBOLS if position == len(symbols) - 1 else ALPHABET
    wrong = data.draw(st.sampled_from([s for s in pool if s != symbols[position]]))
    typo = symbols[:position] + wrong + symbols[position + 1 :]
    with pytest.raises(InvalidCode):
        parse_invite_code(typo)


@given(campaign=ids, referrer=ids, data=st.data())
def test_every_swap_of_neighbouring_symbols_is_caught(
    campaign: int, referrer: int, data: st.DataObject
) -> None:
    symbols = invite_code(campaign, referrer).replace("-", "")
    digits = symbols[:-1]
    position = data.draw(st.integers(0, len(digits) - 2))
    if digits[position] == digits[position + 1]:
        return  # swapping equal symbols changes nothing
    swapped = digits[:position] + digits[position + 1] + digits[position] + digits[position + 2 :]
    with pytest.raises(InvalidCode):
        parse_invite_code(swapped + symbols[-1])


@pytest.mark.parametrize(
    "code",
    [
        "",
        "-",
        "0000",
        "0000-3",
        "0000-3U3",
        "ÄÄÄÄ-ÄÄ",
        "0000-0000-0000-0000-0000-0000-00",
        "0000-000",
    ],
)
def test_malformed_codes_are_refused(code: str) -> None:
    with pytest.raises(InvalidCode):
        parse_invite_code(code)


def test_mint_response_has_the_code(
    link: dict[str, Any], campaign: dict[str, Any], services: Services, client: FlaskClient
) -> None:
    decoded = services.codec.decode(link["token"])
    assert link["code"] == invite_code(campaign["id"], decoded.referrer_id)
    schema = client.get("/api/v1/openapi.json").json["components"]["schemas"]["Link"]
    assert "code" in schema["required"]
    assert re.fullmatch(schema["properties"]["code"]["pattern"], link["code"])


def test_code_redirects_to_the_sharers_current_link(
    client: FlaskClient, link: dict[str, Any], services: Services, admin: dict[str, str]
) -> None:
    before = int(time.time())
    response = client.get(f"/c/{link['code']}")
    assert response.status_code == 302
    assert response.headers["Cache-Control"] == "no-store"
    location = response.headers["Location"]
    assert location.startswith("https://go.example.test/s/")
    token = location.removeprefix("https://go.example.test/s/")
    minted, fresh = services.codec.decode(link["token"]), services.codec.decode(token)
    assert (fresh.campaign_id, fresh.referrer_id, fresh.generation) == (
        minted.campaign_id,
        minted.referrer_id,
        minted.generation,
    )
    assert not fresh.scan
    assert before - 3600 < fresh.issued_at <= int(time.time()) and fresh.issued_at % 3600 == 0
    click = client.get(f"/s/{token}", headers=BROWSER)
    assert click.status_code == 302
    assert click.headers["Location"].startswith("https://shop.example.com/landing?src=share")

    # Typed sloppily it still works.
    sloppy = link["code"].lower().replace("-", "")
    assert client.get(f"/c/{sloppy}").status_code == 302


def test_a_revoke_stops_the_code_until_a_link_is_minted_again(
    client: FlaskClient, link: dict[str, Any], services: Services, admin: dict[str, str]
) -> None:
    """The code names the sharer, not a link: while their links are revoked it leads nowhere
    (it used to mint a fresh link, so a revoked sharer's posters kept earning); a link minted
    for them again is the way back, and the code leads to it."""
    assert (
        client.post("/api/v1/campaigns/milk-tea/referrers/alice/revoke", headers=admin).json[
            "generation"
        ]
        == 1
    )
    assert client.get(f"/s/{link['token']}", headers=BROWSER).status_code == 410
    assert client.get(f"/c/{link['code']}").status_code == 404
    minted = client.post(
        "/api/v1/campaigns/milk-tea/links", json={"referrer": "alice"}, headers=admin
    )
    assert minted.status_code == 201 and minted.json["code"] == link["code"]
    location = client.get(f"/c/{link['code']}").headers["Location"]
    token = location.rsplit("/", 1)[1]
    assert services.codec.decode(token).generation == 1
    assert client.get(f"/s/{token}", headers=BROWSER).status_code == 302


def test_bad_and_unknown_codes_get_the_404_page(
    client: FlaskClient, link: dict[str, Any], campaign: dict[str, Any]
) -> None:
    not_found = client.get("/s/junk", headers=BROWSER).data
    code = link["code"]
    wrong_check = code[:-1] + next(s for s in CHECK_SYMBOLS if s != code[-1])
    referrer = 1 + 1  # alice is referrer 1; nobody is 2 yet
    for bad in (
        wrong_check,
        "nonsense",
        "0000",
        invite_code(campaign["id"], referrer),
        invite_code(campaign["id"] + 50, 1),
    ):
        response = client.get(f"/c/{bad}")
        assert response.status_code == 404, bad
        assert response.data == not_found
        assert response.headers["Cache-Control"] == "no-store"


def test_a_code_leads_to_one_link_an_hour_not_a_new_one_each_second(
    client: FlaskClient, link: dict[str, Any], services: Services
) -> None:
    """Each visit to /c/<code> used to issue a link of that second: a new token each time, and
    each token's poster (80 ms to draw) rendered afresh for anyone asking, without a key."""
    hour = (int(time.time()) // 3600) * 3600
    first = services.links.invite_target(link["code"], now=hour + 5)
    assert first is not None
    assert services.links.invite_target(link["code"], now=hour + 3599) == first
    later = services.links.invite_target(link["code"], now=hour + 3600)
    assert later is not None and later != first
    token = first.rsplit("/", 1)[1]
    assert services.codec.decode(token).issued_at == hour
    poster = client.get(f"/s/{token}/poster.png")
    assert poster.status_code == 200 and poster.headers["Content-Type"] == "image/png"
