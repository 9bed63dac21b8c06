"""Click events for tests that record clicks straight through the recorder (click.lua)."""

from __future__ import annotations

from typing import Any

from gateway.events import ClickEvent


def click_event(campaign_id: int, number: int, **fields: Any) -> ClickEvent:
    """An allowed, redirected click from an iPhone, numbered ``number`` (its id and visitor);
    ``fields`` change any of it."""
    values: dict[str, Any] = {
        "id": f"{campaign_id:x}.event{number:08d}",
        "ts": 1_770_552_000.0,
        "campaign_id": campaign_id,
        "campaign": "milk-tea",
        "referrer_id": 1,
        "visitor_id": f"visitor{number:015d}",
        "ip_hash": f"{number:020x}",
        "prefix": "203.0.113.0/24",
        "ua": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Safari/604.1",
        "accept_language": "zh-CN",
        "referer": "",
        "scan": False,
        "outcome": "redirect",
        "decision": "allow",
        "score": 0.01,
        "platform": "browser",
    }
    values.update(fields)
    return ClickEvent(**values)
