"""The "possible block" watch: a platform's share collapses while the others hold."""

from __future__ import annotations

import itertools
from typing import Any

from flask.testing import FlaskClient

from gateway.events import ClickEvent
from gateway.jobs import Job, Scheduler
from gateway.platforms import PLATFORM_KEYS
from gateway.platformwatch import watch
from gateway.services import Services

NOW = 1_770_552_000.0  # the hour the watch runs in
HOUR = 3600
_ids = itertools.count()


def clicks(
    services: Services, campaign: dict[str, Any], hour_offset: int, per_platform: dict[str, int]
) -> None:
    events = [
        ClickEvent(
            id=f"{campaign['id']:x}.t{next(_ids)}",
            ts=NOW + hour_offset * HOUR + n,
            campaign_id=campaign["id"],
            campaign=campaign["slug"],
            referrer_id=1,
            visitor_id=None,
            ip_hash="h",
            prefix="203.0.113.0/24",
            ua="",
            accept_language="zh-CN",
            referer="",
            scan=False,
            outcome="redirect",
            decision="allow",
            score=0.0,
            platform=platform,
        )
        for platform, count in per_platform.items()
        for n in range(count)
    ]
    services.recorder.write(events)


def day_of_traffic(services: Services, campaign: dict[str, Any], recent: dict[str, int]) -> None:
    for offset in range(-25, -1):
        clicks(services, campaign, offset, {"browser": 60, "wechat": 40, "weibo": 2})
    for offset in (-1, 0):
        clicks(services, campaign, offset, recent)


def run_watch(services: Services) -> list[Any]:
    return watch(services.store.main, services.campaigns, PLATFORM_KEYS, NOW + 1800)


def test_collapse_raises_an_alert_and_changes_nothing(
    services: Services, campaign: dict[str, Any], client: FlaskClient, admin: dict[str, str]
) -> None:
    day_of_traffic(services, campaign, {"browser": 60, "wechat": 1, "weibo": 2})
    raised = run_watch(services)
    assert [(a.platform, a.baseline_share, a.recent_share) for a in raised] == [
        ("wechat", round(40 * 24 / (102 * 24), 4), round(2 / 126, 4))
    ]
    assert run_watch(services) == []  # already open: not raised twice
    listed = {
        p["platform"]: p
        for p in client.get("/api/v1/campaigns/milk-tea/platforms", headers=admin).json["platforms"]
    }
    assert listed["wechat"]["alert"]["recent_clicks"] == 2
    assert listed["wechat"]["status"] == "ok"  # never flipped silently
    confirmed = client.put(
        "/api/v1/campaigns/milk-tea/platforms/wechat", json={"status": "blocked"}, headers=admin
    )
    assert confirmed.json["alert"] is None
    listed = {
        p["platform"]: p
        for p in client.get("/api/v1/campaigns/milk-tea/platforms", headers=admin).json["platforms"]
    }
    assert listed["wechat"]["alert"] is None and listed["wechat"]["status"] == "blocked"
    assert run_watch(services) == []  # blocked platforms are not watched


def test_everything_falling_is_not_a_block(services: Services, campaign: dict[str, Any]) -> None:
    day_of_traffic(services, campaign, {"browser": 10, "wechat": 1})
    assert run_watch(services) == []


def test_small_platforms_are_not_watched(services: Services, campaign: dict[str, Any]) -> None:
    day_of_traffic(services, campaign, {"browser": 60, "wechat": 40, "weibo": 0})
    assert run_watch(services) == []


def test_recovery_withdraws_the_alert(
    services: Services, campaign: dict[str, Any], client: FlaskClient, admin: dict[str, str]
) -> None:
    day_of_traffic(services, campaign, {"browser": 60, "wechat": 1, "weibo": 2})
    assert len(run_watch(services)) == 1
    clicks(services, campaign, 0, {"wechat": 60})
    assert run_watch(services) == []
    listed = {
        p["platform"]: p
        for p in client.get("/api/v1/campaigns/milk-tea/platforms", headers=admin).json["platforms"]
    }
    assert listed["wechat"]["alert"] is None


def test_scheduler_runs_a_job_once_per_interval_across_processes(services: Services) -> None:
    runs: list[float] = []
    job = Job("test-job", interval=60, run=runs.append)
    first = Scheduler(services.store.main, [job], clock=lambda: 1.0)
    second = Scheduler(services.store.main, [job], clock=lambda: 2.0)
    assert first.tick() == ["test-job"]
    assert second.tick() == []  # the lock holds for the interval
    assert runs == [1.0]


def test_a_failing_job_does_not_stop_the_others(services: Services) -> None:
    runs: list[float] = []

    def broken(now: float) -> None:
        raise RuntimeError("boom")

    scheduler = Scheduler(
        services.store.main,
        [Job("broken", 60, broken), Job("fine", 60, runs.append)],
        clock=lambda: 3.0,
    )
    assert scheduler.tick() == ["fine"]
    assert runs == [3.0]
