"""The traffic simulator: determinism, the click log v1 format, labels, look-alikes and attacks."""

from __future__ import annotations

import ipaddress
import json
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gateway.cli import cli
from gateway.signals import network_prefix, valid_visitor_id
from gateway.simulate import OUTPUTS, simulate
from gateway.simulate.clock import FESTIVAL_DAYS, HOUR, SHANGHAI, Calendar, at_local
from gateway.simulate.netdata import DATACENTER_SAMPLE, VPN_SAMPLE

ATTACKS = (
    "click_farm",
    "datacenter_bot",
    "self_referral",
    "sybil_chain",
    "click_spam",
    "scraped_link",
    "ring",
    "star_burst",
)
CLICK_KEYS = ["type", "id", "ts", "campaign", "referrer", "ip", "ua", "headers", "visitor_id"]
CONVERSION_KEYS = ["type", "id", "ts", "campaign", "click_id", "user"]
HINTS = {
    "accept-language",
    "referer",
    "sec-ch-ua",
    "sec-ch-ua-mobile",
    "sec-ch-ua-platform",
    "sec-fetch-site",
    "x-requested-with",
}


@dataclass
class Run:
    events: list[dict[str, Any]]
    labels: list[dict[str, Any]]
    referrers: list[dict[str, Any]]
    summary: dict[str, Any]

    def clicks(self, fraud: bool | None = None) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        return [
            (event, label)
            for event, label in zip(self.events, self.labels, strict=True)
            if event["type"] == "click" and (fraud is None or label["fraud"] == fraud)
        ]


def load(out: Path) -> Run:
    def lines(name: str) -> list[dict[str, Any]]:
        with open(out / name, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle]

    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return Run(lines("clicks.jsonl"), lines("labels.jsonl"), lines("referrers.jsonl"), summary)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("sim200")
    simulate(out, scale=200, seed=7)
    return load(out)


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("sim1000")
    # Reach is heavy-tailed, so the realised festival ratio at scale 1000 varies with the seed
    # (10.7-21.9 over seeds 1-16, mean 16; the intensity model itself says 17.7): seed 9 is one
    # near the middle.
    simulate(out, scale=1000, seed=9)
    return load(out)


# -- determinism ---------------------------------------------------------------------------


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    first, second, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out, seed in ((first, 11), (second, 11), (other, 12)):
        out.mkdir()
        simulate(out, scale=30, seed=seed)
    for name in OUTPUTS:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert (first / "clicks.jsonl").read_bytes() != (other / "clicks.jsonl").read_bytes()
    assert sorted(p.name for p in first.iterdir()) == sorted(OUTPUTS)


# -- format --------------------------------------------------------------------------------


def test_every_line_is_a_click_log_v1_event_sorted_by_time(run: Run) -> None:
    assert len(run.events) > 10000
    previous = 0.0
    ids: set[str] = set()
    for event in run.events:
        assert isinstance(event["ts"], float) and event["ts"] >= previous
        previous = event["ts"]
        assert event["id"] not in ids
        ids.add(event["id"])
        if event["type"] == "click":
            assert list(event) == CLICK_KEYS
            assert event["id"].startswith("c") and event["referrer"].startswith("u")
            assert isinstance(event["ua"], str) and isinstance(event["headers"], dict)
            assert {"accept-language", "referer"} <= set(event["headers"]) <= HINTS
            assert all(isinstance(v, str) for v in event["headers"].values())
            assert ipaddress.ip_address(event["ip"]).is_global
            visitor = event["visitor_id"]
            assert visitor is None or valid_visitor_id(visitor)
        else:
            assert list(event) == CONVERSION_KEYS
            assert event["type"] == "conversion" and event["id"].startswith("x")
            assert event["user"].startswith("u")
    assert {e["campaign"] for e in run.events} == {"milk-tea", "spring-coffee"}


def test_conversions_convert_earlier_clicks_of_their_campaign_once(run: Run) -> None:
    clicks = {e["id"]: e for e in run.events if e["type"] == "click"}
    converted: set[str] = set()
    joined: set[tuple[str, str]] = set()
    for event in run.events:
        if event["type"] != "conversion":
            continue
        click = clicks[event["click_id"]]
        assert click["campaign"] == event["campaign"]
        assert click["ts"] < event["ts"]
        assert event["click_id"] not in converted
        converted.add(event["click_id"])
        key = (event["campaign"], event["user"])
        assert key not in joined, f"{key} converted twice"
        joined.add(key)
    # Users of one campaign join the other too (cross-campaign participants).
    users = defaultdict(set)
    for campaign, user in joined:
        users[user].add(campaign)
    assert sum(len(c) == 2 for c in users.values()) > 10


def test_every_referrer_is_a_seed_or_joined_earlier(run: Run) -> None:
    seeds = {(r["campaign"], r["referrer"]) for r in run.referrers if r["seed"]}
    joined_at: dict[tuple[str, str], float] = {}
    for event in run.events:
        if event["type"] == "conversion":
            joined_at[(event["campaign"], event["user"])] = event["ts"]
        else:
            key = (event["campaign"], event["referrer"])
            assert key in seeds or key in joined_at, key
    for referrer in run.referrers:
        key = (referrer["campaign"], referrer["referrer"])
        if not referrer["seed"]:
            assert referrer["joined"] == joined_at[key]


def test_labels_cover_every_event_in_order(run: Run) -> None:
    assert len(run.labels) == len(run.events)
    for event, label in zip(run.events, run.labels, strict=True):
        assert label["id"] == event["id"] and label["type"] == event["type"]
        assert label["kind"] in ("organic", *ATTACKS)
        assert label["fraud"] is (label["kind"] != "organic")
        assert isinstance(label["actor"], str) and label["actor"]
        assert isinstance(label["variant"], str)


def test_conversions_carry_the_label_of_their_click(run: Run) -> None:
    label_of = {label["id"]: label for label in run.labels}
    for event, label in zip(run.events, run.labels, strict=True):
        if event["type"] == "conversion":
            assert label_of[event["click_id"]]["kind"] == label["kind"]


def test_referrers_file_lists_every_clicked_sharer(run: Run) -> None:
    counts = Counter((e["campaign"], e["referrer"]) for e in run.events if e["type"] == "click")
    listed = {(r["campaign"], r["referrer"]): r for r in run.referrers}
    assert len(listed) == len(run.referrers)
    assert {key: r["clicks"] for key, r in listed.items()} == dict(counts)
    for referrer in run.referrers:
        assert referrer["kind"] in ("organic", *ATTACKS)
        assert referrer["fraud"] is (referrer["kind"] != "organic")


def test_summary_matches_the_files(run: Run) -> None:
    summary = run.summary
    assert summary["format"] == "refgate click log v1"
    assert (summary["seed"], summary["scale"]) == (7, 200)
    assert summary["events"] == len(run.events)
    kinds = Counter((label["kind"], label["type"]) for label in run.labels)
    for kind, counts in summary["kinds"].items():
        assert counts == {
            "clicks": kinds[(kind, "click")],
            "conversions": kinds[(kind, "conversion")],
        }
    assert summary["span"]["first"] == run.events[0]["ts"]
    assert summary["span"]["last"] == run.events[-1]["ts"]
    assert [c["slug"] for c in summary["campaigns"]] == ["milk-tea", "spring-coffee"]
    assert summary["referrers"]["total"] == len(run.referrers)


# -- the honest population and its look-alikes ---------------------------------------------


def test_carrier_nat_addresses_carry_hundreds_of_unrelated_honest_people(run: Run) -> None:
    people: dict[str, set[str]] = defaultdict(set)
    sharers: dict[str, set[str]] = defaultdict(set)
    for event, label in run.clicks(fraud=False):
        people[event["ip"]].add(label["actor"])
        sharers[event["ip"]].add(event["referrer"])
    crowded = [ip for ip, actors in people.items() if len(actors) >= 100]
    assert len(crowded) >= 10
    assert all(len(sharers[ip]) >= 30 for ip in crowded)
    assert max(len(a) for a in people.values()) >= 300
    # Some crowding on IPv6: many people inside one carrier /48.
    per_48: dict[str, set[str]] = defaultdict(set)
    for event, label in run.clicks(fraud=False):
        if ":" in event["ip"]:
            per_48[network_prefix(event["ip"])].add(label["actor"])
    assert max(len(a) for a in per_48.values()) >= 50


def test_households_share_an_address_and_invite_each_other(run: Run) -> None:
    organic = run.clicks(fraud=False)
    household = [(e, label) for e, label in organic if label["variant"] == "household"]
    assert 0.02 <= len(household) / len(organic) <= 0.15
    # The inviting sharer's own clicks (as a visitor) came from the same home address.
    actor_of_user = {}
    for event, label in zip(run.events, run.labels, strict=True):
        if event["type"] == "conversion" and not label["fraud"]:
            actor_of_user[event["user"]] = label["actor"]
    addresses: dict[str, set[str]] = defaultdict(set)
    for event, label in organic:
        addresses[label["actor"]].add(event["ip"])
    shared = sum(
        1
        for event, label in household
        if event["ip"] in addresses.get(actor_of_user.get(event["referrer"], ""), set())
    )
    assert shared >= 50
    # Some family members sign up on the sharer's own phone: honest, and same device.
    assert any(label["variant"] == "shared_device" for _, label in organic)


def test_viral_sharers_draw_hundreds_of_honest_clicks_within_hours(run: Run) -> None:
    times: dict[tuple[str, str], list[float]] = defaultdict(list)
    for event, _ in run.clicks(fraud=False):
        times[(event["campaign"], event["referrer"])].append(event["ts"])
    best = 0
    for stamps in times.values():
        start = 0
        for end, ts in enumerate(stamps):
            while ts - stamps[start] > 3 * 3600:
                start += 1
            best = max(best, end - start + 1)
    assert best >= 500
    honest = {(r["campaign"], r["referrer"]) for r in run.referrers if not r["fraud"]}
    busy = [key for key, stamps in times.items() if len(stamps) >= 500]
    assert busy and all(key in honest for key in busy)


def test_webviews_often_keep_no_cookie_and_people_reopen_in_the_browser(run: Run) -> None:
    organic = run.clicks(fraud=False)
    no_cookie = sum(e["visitor_id"] is None for e, _ in organic) / len(organic)
    assert 0.2 <= no_cookie <= 0.55
    in_app = [e for e, _ in organic if "MicroMessenger" in e["ua"]]
    browser = [e for e, _ in organic if "Safari/604.1" in e["ua"] and "Version/" in e["ua"]]
    assert sum(e["visitor_id"] is None for e in in_app) / len(in_app) > 0.35
    assert sum(e["visitor_id"] is None for e in browser) / len(browser) < 0.1
    # A reopen comes from the same person and address shortly after, with another visitor id.
    last: dict[str, dict[str, Any]] = {}
    matched = reopens = 0
    for event, label in organic:
        previous = last.get(label["actor"])
        if label["variant"] == "reopen" and previous is not None:
            reopens += 1
            matched += (
                previous["ip"] == event["ip"]
                and event["ts"] - previous["ts"] < 600
                and previous["visitor_id"] != event["visitor_id"]
                and previous["ua"] != event["ua"]
            )
        last[label["actor"]] = event
    assert reopens > 200 and matched / reopens > 0.9


def test_honest_traffic_speaks_mostly_chinese_from_real_app_user_agents(run: Run) -> None:
    organic = run.clicks(fraud=False)
    languages = Counter(e["headers"]["accept-language"] for e, _ in organic)
    chinese = sum(n for lang, n in languages.items() if lang.lower().startswith("zh"))
    assert 0.85 <= chinese / len(organic) <= 0.97
    assert languages[""] > 0  # a few honest webviews send none at all
    apps = Counter()
    for event, _ in organic:
        ua = event["ua"]
        apps["wechat"] += "MicroMessenger" in ua
        apps["qq"] += " QQ/" in ua
        apps["weibo"] += "Weibo (" in ua
        apps["douyin"] += "aweme" in ua
        apps["desktop"] += "Windows NT" in ua or "Macintosh" in ua
    assert apps["wechat"] / len(organic) > 0.5
    assert all(apps[name] > 0 for name in ("qq", "weibo", "douyin", "desktop"))
    android_wechat = [e for e, _ in organic if "MicroMessenger" in e["ua"] and "Android" in e["ua"]]
    assert sum("x-requested-with" in e["headers"] for e in android_wechat) > 0.7 * len(
        android_wechat
    )
    iphone = [e for e, _ in organic if "iPhone" in e["ua"]]
    assert not any("sec-ch-ua" in e["headers"] for e in iphone)


def test_festival_evening_brings_15_to_20_times_the_baseline(large: Run) -> None:
    # The busiest three hours against an average hour of the ordinary days.
    # The crowd: honest clicks except influencers' audiences (their own real-time spikes).
    hourly: Counter[int] = Counter()
    for event, label in large.clicks(fraud=False):
        if event["campaign"] == "milk-tea" and label["variant"] != "viral":
            hourly[int(event["ts"] // 3600)] += 1
    main = large.summary["campaigns"][0]
    hours = range(int(-(-main["start"] // 3600)), int(main["end"] // 3600))
    start = max(hours[:-2], key=lambda h: hourly[h] + hourly[h + 1] + hourly[h + 2])
    local = datetime.fromtimestamp(start * 3600, SHANGHAI)
    assert (local.month, local.day) == (2, 16) and 18 <= local.hour <= 22
    ordinary = [
        hourly[h]
        for h in hours[24:]
        if datetime.fromtimestamp(h * 3600, SHANGHAI).day not in (16, 17)
    ]
    peak = (hourly[start] + hourly[start + 1] + hourly[start + 2]) / 3
    ratio = peak / statistics.fmean(ordinary)
    assert 15 <= ratio <= 20, ratio
    assert ratio == pytest.approx(large.summary["peak"]["ratio"], abs=0.01)
    # Nights are quiet, evenings busy.
    by_hour = Counter()
    for h in hours:
        by_hour[datetime.fromtimestamp(h * 3600, SHANGHAI).hour] += hourly[h]
    assert by_hour[4] * 5 < by_hour[20]


def test_the_activity_model_puts_the_festival_evening_at_15_to_20_times_an_ordinary_hour() -> None:
    start = at_local(2026, 2, 13, 11)
    calendar = Calendar(start, 6 * 24)
    rates = [calendar.rate(start + (h + 0.5) * HOUR) for h in range(6 * 24)]
    ordinary = [
        rate
        for h, rate in enumerate(rates)
        if h >= 24 and Calendar.local_day(start + h * HOUR) not in FESTIVAL_DAYS
    ]
    evening = [calendar.rate(at_local(2026, 2, 16, h, 30)) for h in (20, 21, 22)]
    assert 15 <= statistics.fmean(evening) / statistics.fmean(ordinary) <= 20
    # Activity time: a 20-minute delay at the baseline is about a minute at the peak.
    peak = at_local(2026, 2, 16, 21)
    assert calendar.after(peak, 1 / 3) - peak < 120
    assert calendar.after(at_local(2026, 2, 14, 4), 1 / 3) - at_local(2026, 2, 14, 4) > 3600


def test_scale_grows_the_population_linearly(run: Run, large: Run) -> None:
    assert 100_000 <= large.summary["events"] <= 300_000
    # ~130 events per unit; heavy-tailed trees (one more viral sharer) move small runs a lot.
    for sample in (run, large):
        assert 90 <= sample.summary["events"] / sample.summary["scale"] <= 250


# -- attacks -------------------------------------------------------------------------------


def test_every_attack_kind_runs_and_its_referrers_are_labelled(run: Run) -> None:
    kinds = Counter(label["kind"] for label in run.labels)
    assert all(kinds[kind] > 0 for kind in ATTACKS), kinds
    converting = Counter(label["kind"] for label in run.labels if label["type"] == "conversion")
    for kind in ("click_farm", "self_referral", "sybil_chain", "ring", "star_burst"):
        assert converting[kind] > 0, kind
    assert converting["click_spam"] == 0
    fraud_referrers = Counter(r["kind"] for r in run.referrers if r["fraud"])
    for kind in ("self_referral", "sybil_chain", "ring", "star_burst"):
        assert fraud_referrers[kind] > 0, kind
    share = run.summary["fraud"]["share_of_events"]
    assert 0.05 <= share <= 0.3


def test_sybil_chains_are_deep_and_fast(run: Run) -> None:
    parent: dict[tuple[str, str], str] = {}
    clicks = {e["id"]: e for e in run.events if e["type"] == "click"}
    kind_of = {label["id"]: label["kind"] for label in run.labels}
    for event in run.events:
        if event["type"] == "conversion" and kind_of[event["id"]] == "sybil_chain":
            parent[(event["campaign"], event["user"])] = clicks[event["click_id"]]["referrer"]

    def depth(key: tuple[str, str]) -> int:
        steps = 0
        while key in parent:
            key = (key[0], parent[key])
            steps += 1
        return steps

    assert max(depth(key) for key in parent) >= 10


def test_ring_members_convert_each_others_links(run: Run) -> None:
    # Alternate accounts of member A convert on member B's link and vice versa: a cycle between
    # the actors' devices (UA) and the referrers.
    edges: set[tuple[str, str]] = set()
    clicks = {e["id"]: e for e in run.events if e["type"] == "click"}
    for event, label in zip(run.events, run.labels, strict=True):
        if event["type"] == "conversion" and label["kind"] == "ring":
            click = clicks[event["click_id"]]
            edges.add((click["ua"], click["referrer"]))
    referrers_by_ua: dict[str, set[str]] = defaultdict(set)
    for ua, referrer in edges:
        referrers_by_ua[ua].add(referrer)
    assert any(len(refs) >= 2 for refs in referrers_by_ua.values())


def test_larger_runs_cover_every_variant_of_every_attack(large: Run) -> None:
    variants: dict[str, set[str]] = defaultdict(set)
    for label in large.labels:
        variants[label["kind"]].add(label["variant"])
    assert variants["click_farm"] == {"residential", "mobile_proxy", "mixed"}
    assert variants["datacenter_bot"] == {
        "headless",
        "scripted",
        "spoofed_mobile",
        "residential_proxy",
    }
    assert variants["self_referral"] == {
        "same_device",
        "other_browser",
        "spare_phone",
        "mobile_data",
    }
    assert variants["sybil_chain"] == {"fast", "slow", "rotating_ip"}
    assert variants["click_spam"] == {"burst", "rotating", "slow", "sabotage"}
    assert variants["scraped_link"] == {"self_posted", "scraped"}
    assert variants["ring"] == {"clone_app", "spare_phones"}
    assert variants["star_burst"] == {"one_network", "sim_pool", "emulators"}
    # Victims are not fraudulent referrers: sabotaged and scraped links belong to honest sharers.
    fraud_referrers = {(r["campaign"], r["referrer"]) for r in large.referrers if r["fraud"]}
    victims = {
        (event["campaign"], event["referrer"])
        for event, label in large.clicks(fraud=True)
        if label["variant"] in ("sabotage", "scraped")
    }
    assert victims and not victims & fraud_referrers


def test_attacks_are_not_separable_by_one_naive_rule(large: Run) -> None:
    organic, fraud = large.clicks(fraud=False), large.clicks(fraud=True)
    datacenter = [ipaddress.ip_network(c) for c in DATACENTER_SAMPLE + VPN_SAMPLE]

    def in_datacenter(ip: str) -> bool:
        address = ipaddress.ip_address(ip)
        return any(address in net for net in datacenter)

    # Honest people use VPNs and cloud proxies; many bots do not use datacenters at all.
    assert sum(in_datacenter(e["ip"]) for e, _ in organic) > 50
    assert any(
        not in_datacenter(e["ip"]) for e, label in fraud if label["kind"] == "datacenter_bot"
    )
    # Attack traffic comes from addresses honest people use too.
    honest_ips = {e["ip"] for e, _ in organic}
    shared = {label["kind"] for e, label in fraud if e["ip"] in honest_ips}
    assert {"click_farm", "datacenter_bot", "self_referral"} <= shared
    # Attack user agents are mostly real app user agents.
    honest_uas = {e["ua"] for e, _ in organic}
    assert sum(e["ua"] in honest_uas for e, _ in fraud) > 0.2 * len(fraud)
    # Blocking every address with 100+ clicks would hit thousands of honest clicks.
    per_ip = Counter(e["ip"] for e, _ in large.clicks())
    assert sum(per_ip[e["ip"]] >= 100 for e, _ in organic) > 2000


# -- command line --------------------------------------------------------------------------


def test_cli_writes_a_run(tmp_path: Path) -> None:
    out = tmp_path / "new" / "run"
    result = CliRunner().invoke(
        cli, ["simulate", "--scale", "10", "--seed", "3", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "events" in result.stdout and result.stderr == ""
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert (summary["scale"], summary["seed"]) == (10, 3)


def test_cli_rejects_bad_arguments(tmp_path: Path) -> None:
    runner = CliRunner()
    zero = runner.invoke(cli, ["simulate", "--scale", "0", "--out", str(tmp_path / "a")])
    assert zero.exit_code == 2 and "--scale" in zero.output
    word = runner.invoke(cli, ["simulate", "--scale", "many", "--out", str(tmp_path / "a")])
    assert word.exit_code == 2 and "many" in word.output
    missing = runner.invoke(cli, ["simulate", "--scale", "5"])
    assert missing.exit_code == 2 and "--out" in missing.output
    a_file = tmp_path / "file"
    a_file.write_text("x")
    not_dir = runner.invoke(cli, ["simulate", "--out", str(a_file)])
    assert not_dir.exit_code == 2 and "file" in not_dir.output
    under_file = runner.invoke(cli, ["simulate", "--out", str(a_file / "sub")])
    assert under_file.exit_code == 2 and "cannot create" in under_file.output
    assert not (tmp_path / "a").exists()


def test_cli_refuses_a_non_empty_directory_unless_forced(tmp_path: Path) -> None:
    runner = CliRunner()
    keep = tmp_path / "notes.txt"
    keep.write_text("mine")
    refused = runner.invoke(cli, ["simulate", "--scale", "5", "--out", str(tmp_path)])
    assert refused.exit_code == 2 and "not empty" in refused.output and "--force" in refused.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    forced = runner.invoke(cli, ["simulate", "--scale", "5", "--out", str(tmp_path), "--force"])
    assert forced.exit_code == 0, forced.output
    assert keep.read_text() == "mine"
    again = runner.invoke(cli, ["simulate", "--scale", "5", "--out", str(tmp_path), "--force"])
    assert again.exit_code == 0
    assert not list(tmp_path.glob("*.partial"))


def test_cli_refuses_a_seed_or_an_output_it_cannot_write(tmp_path: Path) -> None:
    runner = CliRunner()
    (tmp_path / "clicks.jsonl").mkdir()
    blocked = runner.invoke(cli, ["simulate", "--scale", "1", "--out", str(tmp_path), "--force"])
    assert blocked.exit_code == 2 and "is a directory" in blocked.output
    huge = runner.invoke(cli, ["simulate", "--seed", str(2**64), "--out", str(tmp_path / "s")])
    assert huge.exit_code == 2 and "--seed" in huge.output
    assert not (tmp_path / "s").exists()


def test_cli_reports_progress_on_stderr_when_asked(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["simulate", "--scale", "5", "--out", str(tmp_path / "p"), "--progress"]
    )
    assert result.exit_code == 0
    assert "refgate simulate:" in result.stderr
