"""Share-link tokens: round trip, compactness, tampering, key rotation."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.links import EPOCH, InvalidLink, LinkCodec, ShareLink, key_id

NEW = b"new-secret-key-0123456789abcdef"
OLD = b"old-secret-key-0123456789abcdef"
codec = LinkCodec([NEW, OLD])
LINK = ShareLink(campaign_id=12, referrer_id=345678, issued_at=1_770_552_000, generation=3)
TOKEN = codec.encode(LINK)
ALPHABET = string.ascii_letters + string.digits + "-_."


def test_round_trip_keeps_every_field() -> None:
    assert codec.decode(TOKEN) == LINK
    scan = codec.decode(codec.encode(LINK.as_scan()))
    assert scan.scan and scan.as_link() == LINK


@given(
    campaign=st.integers(1, 2**31),
    referrer=st.integers(1, 2**40),
    issued=st.integers(EPOCH, EPOCH + 100 * 365 * 86400),
    generation=st.integers(0, 10_000),
    scan=st.booleans(),
)
def test_round_trip_any_values_and_compact(
    campaign: int, referrer: int, issued: int, generation: int, scan: bool
) -> None:
    link = ShareLink(campaign, referrer, issued, generation, scan)
    token = codec.encode(link)
    assert codec.decode(token) == link
    assert len(token) < 60
    assert set(token) <= set(ALPHABET)


def test_typical_token_is_short() -> None:
    assert len(TOKEN) <= 46


def test_scan_token_differs_from_link_token() -> None:
    assert codec.encode(LINK.as_scan()) != TOKEN


@settings(max_examples=400)
@given(data=st.data())
def test_no_mutation_of_a_valid_token_is_accepted(data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(["replace", "insert", "delete", "truncate", "swap", "append"]))
    token = TOKEN
    position = data.draw(st.integers(0, len(token) - 1))
    char = data.draw(st.sampled_from(ALPHABET))
    if kind == "replace":
        mutated = token[:position] + char + token[position + 1 :]
    elif kind == "insert":
        mutated = token[:position] + char + token[position:]
    elif kind == "delete":
        mutated = token[:position] + token[position + 1 :]
    elif kind == "truncate":
        mutated = token[:position]
    elif kind == "swap":
        other = data.draw(st.integers(0, len(token) - 1))
        chars = list(token)
        chars[position], chars[other] = chars[other], chars[position]
        mutated = "".join(chars)
    else:
        mutated = token + data.draw(st.text(ALPHABET, min_size=1, max_size=5))
    if mutated == token:
        return
    with pytest.raises(InvalidLink):
        codec.decode(mutated)


@given(st.text(max_size=200))
def test_arbitrary_text_is_rejected_cleanly(text: str) -> None:
    with pytest.raises(InvalidLink):
        codec.decode(text)


def test_a_token_with_a_forged_payload_and_reused_signature_is_rejected() -> None:
    other = codec.encode(ShareLink(99, 1, LINK.issued_at))
    forged = other.split(".")[0] + "." + TOKEN.split(".")[1]
    with pytest.raises(InvalidLink) as error:
        codec.decode(forged)
    assert error.value.reason == "bad-signature"


def test_rotation_old_key_still_verifies_new_key_signs() -> None:
    before = LinkCodec([OLD])
    old_token = before.encode(LINK)
    after = LinkCodec([NEW, OLD])
    assert after.decode(old_token) == LINK
    new_token = after.encode(LINK)
    assert new_token != old_token
    with pytest.raises(InvalidLink) as error:
        before.decode(new_token)
    assert error.value.reason == "unknown-key"


def test_retired_key_no_longer_verifies() -> None:
    old_token = LinkCodec([OLD]).encode(LINK)
    with pytest.raises(InvalidLink) as error:
        LinkCodec([NEW]).decode(old_token)
    assert error.value.reason == "unknown-key"


def test_same_key_id_for_a_key_wherever_it_is_listed() -> None:
    assert key_id(OLD) != key_id(NEW)
    assert LinkCodec([OLD, NEW]).decode(LinkCodec([NEW]).encode(LINK)) == LINK


def test_no_single_character_change_is_accepted_exhaustively() -> None:
    # Deterministic complement to the property test: every position, every character. It found
    # that base64's spare bits let four spellings of one signature verify.
    accepted = []
    for position in range(len(TOKEN)):
        for char in ALPHABET:
            mutated = TOKEN[:position] + char + TOKEN[position + 1 :]
            if mutated == TOKEN:
                continue
            try:
                codec.decode(mutated)
            except InvalidLink:
                continue
            accepted.append(mutated)
    assert accepted == []
