"""Labelled clicks for training: simulator logs replayed through the engine, and the risk
team's decisions on recorded traffic. Both end as feature vectors computed by the same code that
scores live clicks (detectors.features)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import orjson

from detectors.features import FEATURE_NAMES
from detectors.training import LabelledClicks
from gateway.referrer_names import ReferrerNames
from gateway.replay import replay
from gateway.store import keys

#: Share of a log's scored clicks (previews aside) that must have a label.
MIN_LABELLED = 0.9


class LabelError(ValueError):
    """A simulation's labels cannot be used with its log."""


def from_simulation(directory: Path) -> LabelledClicks:
    """Replay ``directory/clicks.jsonl`` on a fresh store and label its clicks from
    ``directory/labels.jsonl`` (``refgate simulate`` writes both)."""
    log, labels_path = directory / "clicks.jsonl", directory / "labels.jsonl"
    for path in (log, labels_path):
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing (expected `refgate simulate` output)")
    labels: dict[str, dict[str, Any]] = {}
    with open(labels_path, "rb") as fh:
        for number, line in enumerate(fh, 1):
            if line.strip():
                try:
                    row = orjson.loads(line)
                    labels[row["id"]] = row
                except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                    raise LabelError(f"{labels_path}: line {number}: not a label ({exc})") from None
    referrers: dict[str, str] = {}
    with open(log, "rb") as fh:
        for line in fh:
            if line.strip():
                event = orjson.loads(line)
                if event.get("type") == "click":
                    referrers[event["id"]] = f"{event['campaign']}/{event['referrer']}"
    data = LabelledClicks([], [], [], [])
    scored = 0
    with tempfile.TemporaryDirectory(prefix="refgate-train-") as out:
        replay(log, Path(out), with_features=True)
        with open(Path(out) / "clicks.jsonl", "rb") as fh:
            for line in fh:
                row = orjson.loads(line)
                features = row.get("features")
                if not features or len(features) != len(FEATURE_NAMES):
                    continue  # previews are not scored
                scored += 1
                label = labels.get(row["id"])
                if label is None:
                    continue  # unlabelled clicks are not used
                data.features.append(features)
                data.labels.append(1 if label.get("fraud") else 0)
                data.groups.append(referrers.get(row["id"], row["id"]))
                data.kinds.append(str(label.get("kind", "")))
    if scored and len(data.labels) < scored * MIN_LABELLED:
        # A cut-off or foreign labels file would train on a part, or on wrong labels.
        raise LabelError(
            f"{labels_path}: only {len(data.labels)} of {scored} clicks have a label; the labels "
            "do not belong to this log (or were cut off)"
        )
    return data


def from_decisions(store: Any, campaign_ids: list[int]) -> LabelledClicks:
    """Clicks the risk team decided on (a referrer's clicks, or a flagged click)."""
    data = LabelledClicks([], [], [], [])
    for campaign_id in campaign_ids:
        ck = keys.campaign_keys(campaign_id)
        verdicts: dict[tuple[str, str], int] = {}
        for _, fields in store.xrange(ck.decisions):
            decision = orjson.loads(fields[b"d"])
            verdicts[(decision["kind"], decision["subject"])] = (
                1 if decision["decision"] == "fraud" else 0
            )
        if not verdicts:
            continue
        for event, referrer in ReferrerNames(store, campaign_id).events(store.xrange(ck.events)):
            label = verdicts.get(("click", event["id"]), verdicts.get(("referrer", referrer)))
            features = event.get("features") or []
            if label is None or len(features) != len(FEATURE_NAMES):
                continue
            data.features.append(features)
            data.labels.append(label)
            data.groups.append(f"{campaign_id}/{referrer}")
            data.kinds.append("decision")
    return data
