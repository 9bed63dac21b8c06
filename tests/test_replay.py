"""Replay, export and train from the command line: the same engine on a log's own clock."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskCliRunner

from detectors.model import _digest
from gateway.cli import cli
from gateway.replay import ReplayError, replay, visitor_cookie_value

WECHAT = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN"
)
T0 = 1_770_552_000.0


def write_log(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def honest_and_farm_log(
    seed: int = 7, farmers: int = 1
) -> tuple[list[dict[str, Any]], dict[str, bool]]:
    """People clicking ten sharers' links, and a farm hammering ``farmers`` links (one: the
    sharer "farmer") from a datacenter."""
    rng = random.Random(seed)
    lines: list[dict[str, Any]] = []
    labels: dict[str, bool] = {}
    ts = T0
    for n in range(400):
        ts += rng.expovariate(1 / 6)
        click_id = f"h{n}"
        lines.append(
            {
                "type": "click", "id": click_id, "ts": ts, "campaign": "milk-tea",
                "referrer": f"u{rng.randint(1, 10)}",
                "ip": f"117.136.{rng.randint(0, 255)}.{rng.randint(1, 254)}", "ua": WECHAT,
                "headers": {"accept-language": "zh-CN,zh;q=0.9", "referer": ""},
                "visitor_id": None if rng.random() < 0.4 else f"v{n}",
            }
        )  # fmt: skip
        labels[click_id] = False
        if rng.random() < 0.25:
            lines.append(
                {
                    "type": "conversion",
                    "id": f"x{n}",
                    "ts": ts + 40,
                    "campaign": "milk-tea",
                    "click_id": click_id,
                    "user": f"p{n}",
                }
            )
        if n % 4 == 0:
            ts += 0.5
            farm_id = f"f{n}"
            lines.append(
                {
                    "type": "click", "id": farm_id, "ts": ts, "campaign": "milk-tea",
                    "referrer": "farmer" if farmers == 1 else f"farmer{n % farmers}",
                    "ip": f"3.5.{n % 7}.{n % 200 + 1}", "ua": "Mozilla/5.0 (iPhone) Mobile Safari",
                    "headers": {"referer": ""}, "visitor_id": None,
                }
            )  # fmt: skip
            labels[farm_id] = True
    lines.sort(key=lambda line: line["ts"])
    return lines, labels


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_replay_scores_flags_and_rewards(tmp_path: Path) -> None:
    lines, labels = honest_and_farm_log()
    # A person who joined opens their own new link from the same browser: no credit, and no
    # flag (a check of one's own link; a habit would flag them). Someone else taps a friend's
    # link nine times within half a minute: the last taps are a flood, and a click flag.
    joined = next(
        (line, click)
        for line in lines
        if line["type"] == "conversion"
        for click in lines
        if click["id"] == line["click_id"] and click["visitor_id"]
    )
    conversion, click = joined
    own = {**click, "id": "own1", "ts": conversion["ts"] + 60, "referrer": conversion["user"]}
    minute = (conversion["ts"] // 60 + 3) * 60  # the taps fall within one minute
    taps = [
        {**click, "id": f"tap{n}", "ts": minute + 2 * n, "referrer": "u3",
         "ip": "117.136.9.9", "visitor_id": "tapper"}
        for n in range(9)
    ]  # fmt: skip
    lines = sorted([*lines, own, *taps], key=lambda line: line["ts"])
    labels = {**labels, "own1": True, **{tap["id"]: int(tap["id"][3:]) >= 5 for tap in taps}}
    summary = replay(write_log(tmp_path / "log.jsonl", lines), tmp_path / "out")
    clicks = {row["id"]: row for row in read_jsonl(tmp_path / "out" / "clicks.jsonl")}
    assert set(clicks) == set(labels)
    assert all(clicks[i]["decision"] != "allow" for i, fraud in labels.items() if fraud)
    honest = [clicks[i] for i, fraud in labels.items() if not fraud]
    assert sum(row["decision"] != "allow" for row in honest) <= len(honest) * 0.01
    assert all(row["outcome"] == "fallback" for row in honest)  # WeChat: the fallback page
    flags = read_jsonl(tmp_path / "out" / "flags.jsonl")
    assert {(f["kind"], f["subject"]) for f in flags if f["kind"] == "referrer"} == {
        ("referrer", "farmer")
    }
    rewards = read_jsonl(tmp_path / "out" / "rewards.jsonl")
    assert rewards and {r["status"] for r in rewards} == {"credited"}
    assert all(r["click_id"].startswith("h") for r in rewards)  # the log's own ids
    # One row per conversion in the log, naming the campaign, the click's sharer and the user.
    referrer_of = {line["id"]: line["referrer"] for line in lines if line["type"] == "click"}
    converted = {line["user"]: line["click_id"] for line in lines if line["type"] == "conversion"}
    assert {r["user"] for r in rewards} == set(converted)
    for row in rewards:
        assert set(row) == {
            "campaign",
            "referrer",
            "user",
            "click_id",
            "status",
            "amount",
            "reason",
        }
        assert row["campaign"] == "milk-tea" and row["amount"] == 1
        assert row["click_id"] == converted[row["user"]]
        assert row["referrer"] == referrer_of[row["click_id"]]
    assert summary.rewards == len(rewards)
    # Every file speaks of the log's click ids: click flags and conversions too.
    click_flags = [f for f in flags if f["kind"] == "click"]
    assert click_flags and all(f["subject"] in labels for f in click_flags)
    assert "tap8" in {f["subject"] for f in click_flags}
    assert clicks["own1"]["decision"] == "deny_credit"
    assert "own1" not in {f["subject"] for f in click_flags}
    conversions = read_jsonl(tmp_path / "out" / "conversions.jsonl")
    assert {c["click_id"] for c in conversions} == set(converted.values())
    assert summary.events == len(lines) and summary.events_per_second > 0
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["clicks"] == len(labels)


def test_replay_is_deterministic_in_its_decisions(tmp_path: Path) -> None:
    lines, _ = honest_and_farm_log(seed=11)
    log = write_log(tmp_path / "log.jsonl", lines)
    replay(log, tmp_path / "a")
    replay(log, tmp_path / "b")
    strip = lambda rows: [(r["id"], r["decision"], r["score"]) for r in rows]  # noqa: E731
    assert strip(read_jsonl(tmp_path / "a" / "clicks.jsonl")) == strip(
        read_jsonl(tmp_path / "b" / "clicks.jsonl")
    )


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("not json", "not JSON"),
        ("[1]", "not a JSON object"),
        ('{"type": "visit", "id": "a"}', "type must be"),
        ('{"type": "click", "ts": 1}', "id must be"),
        ('{"type": "click", "id": "a", "ts": "soon"}', "ts must be a number"),
        ('{"type": "click", "id": "a", "ts": 5}', "after 2024"),
        (
            '{"type": "click", "id": "a", "ts": 1770552001, "campaign": "Bad Slug", "referrer": "r", "ip": "1.2.3.4"}',
            "campaign",
        ),
        (
            '{"type": "click", "id": "a", "ts": 1770552001, "campaign": "ok", "referrer": "bad referrer", "ip": "1.2.3.4"}',
            "referrer",
        ),
        (
            '{"type": "click", "id": "a", "ts": 1770552001, "campaign": "ok", "referrer": "r"}',
            "needs ip",
        ),
        (
            '{"type": "click", "id": "first", "ts": 1770552001, "campaign": "ok", "referrer": "r", "ip": "1.2.3.4"}',
            "appears twice",
        ),
        (
            '{"type": "click", "id": "a", "ts": 1770552001, "campaign": "ok", "referrer": "r", "ip": "999.2.3.4"}',
            "not an IPv4 or IPv6 address",
        ),
        (
            '{"type": "click", "id": "a", "ts": 1770552001, "campaign": "ok", "referrer": "r", "ip": "1.2.3.4", "headers": []}',
            "headers must be an object",
        ),
    ],
)
def test_bad_lines_are_named(tmp_path: Path, line: str, problem: str) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text(
        json.dumps(
            {
                "type": "click",
                "id": "first",
                "ts": T0,
                "campaign": "ok",
                "referrer": "r",
                "ip": "203.0.113.1",
                "ua": WECHAT,
                "headers": {},
            }
        )
        + "\n"
        + line
        + "\n"
    )
    with pytest.raises(ReplayError) as error:
        replay(log, tmp_path / "out")
    assert error.value.line == 2 and problem in str(error.value)


def test_out_of_order_log_is_refused(tmp_path: Path) -> None:
    base = {
        "type": "click",
        "campaign": "ok",
        "referrer": "r",
        "ip": "203.0.113.1",
        "ua": WECHAT,
        "headers": {},
    }
    log = write_log(
        tmp_path / "log.jsonl",
        [{**base, "id": "a", "ts": T0 + 10}, {**base, "id": "b", "ts": T0 + 5}],
    )
    with pytest.raises(ReplayError, match="sorted"):
        replay(log, tmp_path / "out")


def test_replay_cli(tmp_path: Path) -> None:
    lines, _ = honest_and_farm_log()
    log = write_log(tmp_path / "log.jsonl", lines)
    runner = CliRunner()
    result = runner.invoke(cli, ["replay", str(log), "--out", str(tmp_path / "out"), "--features"])
    assert result.exit_code == 0, result.output
    assert "events_per_second" in result.output
    first = read_jsonl(tmp_path / "out" / "clicks.jsonl")[0]
    assert len(first["features"]) > 10
    again = runner.invoke(cli, ["replay", str(log), "--out", str(tmp_path / "out")])
    assert again.exit_code == 2 and "not empty" in again.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{}\n")
    failed = runner.invoke(cli, ["replay", str(bad), "--out", str(tmp_path / "bad-out")])
    assert failed.exit_code == 1 and "line 1" in failed.output
    missing = runner.invoke(
        cli, ["replay", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "x")]
    )
    assert missing.exit_code == 2
    # A failed replay leaves nothing that looks like results, and its rerun is not blocked.
    half = tmp_path / "half.jsonl"
    half.write_text("".join(json.dumps(line) + "\n" for line in lines[:5]) + "{not json\n")
    broken = runner.invoke(cli, ["replay", str(half), "--out", str(tmp_path / "half-out")])
    assert broken.exit_code == 1 and "line 6" in broken.output
    assert not (tmp_path / "half-out").exists()
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []
    rerun = runner.invoke(cli, ["replay", str(log), "--out", str(tmp_path / "half-out")])
    assert rerun.exit_code == 0 and (tmp_path / "half-out" / "summary.json").exists()


def test_export_then_replay_round_trip(runner: FlaskCliRunner, app: Flask, tmp_path: Path) -> None:
    services = app.extensions["refgate"]
    campaign = services.campaigns.create(
        {"slug": "tea", "name": "Tea", "destination_url": "https://shop.example.com/"}, "test"
    )
    token = services.links.mint(campaign, "ann").token
    client = app.test_client()
    for n in range(30):
        client.delete_cookie("rg_vid")
        client.get(
            f"/s/{token}",
            headers={"User-Agent": WECHAT, "Accept-Language": "zh-CN"},
            environ_base={"REMOTE_ADDR": f"198.51.{n}.9"},
        )
    services.recorder.flush()
    out = tmp_path / "export.jsonl"
    result = runner.invoke(args=["export", "--campaign", "tea", str(out)])
    assert result.exit_code == 0, result.output
    exported = read_jsonl(out)
    assert len(exported) == 30 and all(
        "ip" not in line and line["ip_hash"] and line["prefix"] for line in exported
    )
    assert [line["ts"] for line in exported] == sorted(line["ts"] for line in exported)
    summary = replay(out, tmp_path / "replayed")
    assert summary.clicks == 30
    bad = runner.invoke(args=["export", "--campaign", "nope", str(out)])
    assert bad.exit_code == 2 and "nope" in bad.output
    kept = out.read_bytes()
    for since in ("yesterday", "-1", "1e20", "nan"):
        bad_since = runner.invoke(args=["export", "--campaign", "tea", "--since", since, str(out)])
        assert bad_since.exit_code == 2 and "--since" in bad_since.output, since
        assert out.read_bytes() == kept, since  # the existing log is left as it was
    for target, problem in ((tmp_path / "no" / "x.jsonl", "is not a directory"), (tmp_path, "")):
        refused = runner.invoke(args=["export", "--campaign", "tea", str(target)])
        assert refused.exit_code == 2 and problem in refused.output, refused.output
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []
    to_stdout = runner.invoke(args=["export", "--campaign", "tea", "--since", "0", "-"])
    assert to_stdout.exit_code == 0 and to_stdout.output.count('"ip_hash"') == 30
    assert not (Path.cwd() / "-").exists()


def test_train_cli_from_a_simulation_directory(
    runner: FlaskCliRunner, app: Flask, tmp_path: Path
) -> None:
    # Training cross-validates by sharer and needs fraud on the fitting side of every fold:
    # several farmed links, not one.
    lines, labels = honest_and_farm_log(seed=3, farmers=6)
    simulation = tmp_path / "sim"
    simulation.mkdir()
    write_log(simulation / "clicks.jsonl", lines)
    (simulation / "labels.jsonl").write_text(
        "".join(
            json.dumps(
                {"id": i, "type": "click", "fraud": f, "kind": "click_farm" if f else "organic"}
            )
            + "\n"
            for i, f in labels.items()
        )
    )
    model_file = tmp_path / "model.json"
    result = runner.invoke(
        args=["train", str(simulation), "--out", str(model_file), "--activate", "--seed", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "average precision" in result.output and "activated" in result.output
    services = app.extensions["refgate"]
    assert services.models.active_version() is not None
    listed = runner.invoke(args=["model", "list"])
    assert listed.output.startswith("* ")
    assert runner.invoke(args=["model", "activate", "nope"]).exit_code == 1
    assert runner.invoke(args=["train"]).exit_code == 2
    # Labels at random: a model no better than chance is refused unless forced.
    noisy = tmp_path / "noisy"
    noisy.mkdir()
    write_log(noisy / "clicks.jsonl", lines)
    coin = random.Random(4)
    (noisy / "labels.jsonl").write_text(
        "".join(
            json.dumps({"id": i, "type": "click", "fraud": coin.random() < 0.3, "kind": "x"}) + "\n"
            for i in labels
        )
    )
    refused = runner.invoke(args=["train", str(noisy), "--activate", "--seed", "1"])
    assert refused.exit_code == 1 and "not saved" in refused.output, refused.output
    assert len(services.models.list()) == 1
    forced = runner.invoke(args=["train", str(noisy), "--force", "--seed", "1"])
    assert forced.exit_code == 0 and "saved because of --force" in forced.output
    assert len(services.models.list()) == 2
    assert runner.invoke(args=["model", "import", str(model_file)]).exit_code == 0
    broken = tmp_path / "broken.json"
    broken.write_text("{}")
    assert runner.invoke(args=["model", "import", str(broken)]).exit_code == 1
    # A different model under a version name that exists is refused: one name, one model.
    document = json.loads(model_file.read_text())
    body = {k: v for k, v in document.items() if k != "sha256"}
    body["baseline"] += 1.0
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**body, "sha256": _digest(body)}))
    clash = runner.invoke(args=["model", "import", str(other)])
    assert clash.exit_code == 1 and "another version name" in clash.output
    assert services.models.get(document["version"]).baseline == document["baseline"]
    # Damaged labels: named by line, or refused when they do not cover the log.
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    write_log(damaged / "clicks.jsonl", lines)
    whole = (simulation / "labels.jsonl").read_text()
    (damaged / "labels.jsonl").write_text(whole[: whole.index("\n", len(whole) // 2) + 12])
    cut = runner.invoke(args=["train", str(damaged)])
    assert cut.exit_code == 2 and "not a label" in cut.output, cut.output
    (damaged / "labels.jsonl").write_text("".join(whole.splitlines(True)[: len(labels) // 3]))
    partial = runner.invoke(args=["train", str(damaged)])
    assert partial.exit_code == 2 and "have a label" in partial.output, partial.output
    unwritable = runner.invoke(
        args=["train", str(simulation), "--out", str(tmp_path / "no" / "m.json")]
    )
    assert unwritable.exit_code == 2 and "--out" in unwritable.output
    assert len(services.models.list()) == 2  # refused before training, nothing saved
    # replay with the trained model
    replayed = CliRunner().invoke(
        cli,
        [
            "replay",
            str(simulation / "clicks.jsonl"),
            "--out",
            str(tmp_path / "with-model"),
            "--model",
            str(model_file),
        ],
    )
    assert replayed.exit_code == 0, replayed.output


def test_visitor_ids_map_to_valid_cookies() -> None:
    from gateway.signals import valid_visitor_id

    assert valid_visitor_id(visitor_cookie_value("v-1"))
    assert visitor_cookie_value("v-1") == visitor_cookie_value("v-1") != visitor_cookie_value("v-2")
