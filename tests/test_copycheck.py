"""The copy check warns about induced-sharing wording, never refuses, and lists every hit."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from gateway.copycheck import check_copy


@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("集赞20个送奶茶", "集赞"),
        ("快来帮我助力！", "助力"),
        ("帮我砍一刀", "砍一刀"),
        ("砍价免费拿", "砍价"),
        ("转发到3个群即可领取", "转发到3个群即可"),
        ("转发得奶茶券", "转发得"),
        ("分享给好友免费领", "分享给好友免费"),
        ("邀请3位好友得奶茶", "邀请3位好友得"),
        ("截图发朋友圈", "朋友圈"),
        ("Share to win a free tea!", "Share to win"),
        ("forward this to get a voucher", "forward this to get"),
        ("Collect 30 likes", "Collect 30 likes"),
        ("Invite 3 friends to unlock", "Invite 3 friends to unlock"),
    ],
)
def test_induced_sharing_is_flagged(text: str, term: str) -> None:
    hits = check_copy({"share_text": text})
    assert [h.term for h in hits] == [term]
    assert hits[0].field == "share_text" and hits[0].rule


@pytest.mark.parametrize(
    "text",
    [
        "春节请你喝奶茶",
        "新用户注册即送一杯奶茶",
        "好友专属福利，点击领取",
        "Spring Festival milk tea on us",
        "Share the joy of the new year",
        "我的邀请码",
    ],
)
def test_ordinary_copy_passes(text: str) -> None:
    assert check_copy({"share_text": text, "name": text}) == []


def test_campaign_save_warns_but_saves(client: FlaskClient, admin: dict[str, str]) -> None:
    response = client.post(
        "/api/v1/campaigns",
        json={
            "slug": "tea",
            "name": "集赞喝奶茶",
            "destination_url": "https://shop.example.com/",
            "share_text": "转发得奶茶，帮我助力",
            "poster": {"title": "春节请客", "text": "砍一刀免费喝"},
        },
        headers=admin,
    )
    assert response.status_code == 201
    warnings = response.json["copy_warnings"]
    assert [(w["field"], w["term"]) for w in warnings] == [
        ("name", "集赞"),
        ("share_text", "转发得"),
        ("share_text", "助力"),
        ("poster.text", "砍一刀"),
    ]
    fixed = client.patch(
        "/api/v1/campaigns/tea",
        json={"name": "春节喝奶茶", "share_text": "请你喝奶茶", "poster": {"title": "春节请客"}},
        headers=admin,
    )
    assert fixed.json["copy_warnings"] == []
