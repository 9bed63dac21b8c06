"""Training the click model with scikit-learn and exporting it for serving (never pickled).

A gradient-boosted ensemble of shallow trees (it finds the interactions a linear model cannot:
a steady pace matters at night, a Referer matters from a desktop), calibrated with Platt scaling
on a separate split, evaluated on a held-out split grouped by referrer (a referrer's clicks are
all in training or all in evaluation, so the score is not flattered by memorising sharers). The
export is plain arrays (detectors.model.ExportedModel); a test checks that the export scores
exactly as scikit-learn does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from detectors.engine import Policy
from detectors.features import FEATURE_NAMES
from detectors.model import ExportedModel, Tree

#: Small on purpose: serving walks every tree for every click (about 10 us for 120 trees).
TREES = 120
DEPTH = 3


@dataclass
class LabelledClicks:
    features: list[list[float]]
    labels: list[int]
    groups: list[str]
    kinds: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def extend(self, other: LabelledClicks) -> None:
        self.features += other.features
        self.labels += other.labels
        self.groups += other.groups
        self.kinds += other.kinds


@dataclass
class TrainingReport:
    model: ExportedModel
    metrics: dict[str, Any]

    def lines(self) -> list[str]:
        m = self.metrics
        out = [
            f"trained on {m['train_clicks']} clicks ({m['train_fraud']} fraud), "
            f"calibrated on {m['calibration_clicks']}, evaluated on {m['test_clicks']} held-out "
            f"clicks ({m['test_fraud']} fraud) of {m['test_referrers']} unseen referrers",
            f"ROC-AUC {m['roc_auc']:.4f}   average precision {m['average_precision']:.4f}"
            if m["test_fraud"] and m["test_fraud"] < m["test_clicks"]
            else "the held-out referrers are all of one class: no ROC-AUC or average precision "
            "(train on more referrers)",
        ]
        for name, row in m["at_thresholds"].items():
            out.append(
                f"score >= {row['threshold']:.2f} ({name}): precision {row['precision']:.4f} "
                f"recall {row['recall']:.4f}"
            )
        return out

    def unfit(self) -> str | None:
        """Why this model must not score clicks, or None: judged on the held-out referrers, a
        model that ranks fraud no better than chance, or whose scores run backwards, would deny
        honest people credit (too little or too narrow data does that)."""
        m = self.metrics
        if not m["test_fraud"] or m["test_fraud"] >= m["test_clicks"]:
            return "the held-out referrers are all of one class: nothing to judge the model by"
        if self.model.calibration_a <= 0:
            return "its calibrated scores run backwards (a negative slope)"
        if not m["roc_auc"] >= MIN_ROC_AUC:
            return (
                f"held-out ROC-AUC {m['roc_auc']:.2f} is under {MIN_ROC_AUC}: it ranks fraud "
                "little better than chance"
            )
        return None


#: The least held-out ROC-AUC a model must reach to be saved without --force.
MIN_ROC_AUC = 0.6


def train(data: LabelledClicks, *, seed: int = 0, test_size: float = 0.2) -> TrainingReport:
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import (
        average_precision_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )
    from sklearn.model_selection import GroupShuffleSplit

    if len(data) < 50:
        raise ValueError(f"need at least 50 labelled clicks to train, got {len(data)}")
    x = np.asarray(data.features, dtype=float)
    y = np.asarray(data.labels, dtype=int)
    groups = np.asarray(data.groups)
    if len(set(y.tolist())) < 2:
        raise ValueError("the labels have one class only: need both fraudulent and honest clicks")
    outer = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
    fit_idx, test_idx = next(outer.split(x, y, groups))
    # Calibration needs both classes on both sides of a split by referrer. With few fraudulent
    # referrers a single random split often puts them all on one side: try several splits,
    # then fall back to a split by click, stratified by label (leaky across a referrer's clicks,
    # so the metrics say so).
    train_idx = calib_idx = np.empty(0, dtype=int)
    inner = GroupShuffleSplit(n_splits=20, test_size=0.2, random_state=seed + 1)
    for train_rel, calib_rel in inner.split(x[fit_idx], y[fit_idx], groups[fit_idx]):
        if (
            len(set(y[fit_idx[train_rel]].tolist()))
            == 2
            == len(set(y[fit_idx[calib_rel]].tolist()))
        ):
            train_idx, calib_idx = fit_idx[train_rel], fit_idx[calib_rel]
            break
    calibration_split = "by referrer"
    if not len(calib_idx):
        from sklearn.model_selection import train_test_split

        if min(np.bincount(y[fit_idx], minlength=2)) < 2:
            raise ValueError("too few clicks of one class to split into training and calibration")
        train_idx, calib_idx = train_test_split(
            fit_idx, test_size=0.2, random_state=seed + 1, stratify=y[fit_idx]
        )
        calibration_split = "by click (too few referrers of one class to split by referrer)"

    ensemble = GradientBoostingClassifier(
        n_estimators=TREES, max_depth=DEPTH, learning_rate=0.1, subsample=0.8, random_state=seed
    )
    ensemble.fit(x[train_idx], y[train_idx])
    platt = LogisticRegression(C=1e6, max_iter=1000)
    platt.fit(ensemble.decision_function(x[calib_idx]).reshape(-1, 1), y[calib_idx])

    model = export(ensemble, platt, version=f"m{time.strftime('%Y%m%d-%H%M%S')}")
    test_scores = np.asarray([model.predict(row) for row in x[test_idx].tolist()])
    y_test = y[test_idx]
    policy = Policy()
    metrics: dict[str, Any] = {
        "train_clicks": len(train_idx),
        "train_fraud": int(y[train_idx].sum()),
        "calibration_clicks": len(calib_idx),
        "calibration_split": calibration_split,
        "test_clicks": len(test_idx),
        "test_fraud": int(y_test.sum()),
        "test_referrers": len(set(groups[test_idx].tolist())),
        "roc_auc": float("nan"),
        "average_precision": float("nan"),
        "at_thresholds": {},
    }
    if len(set(y_test.tolist())) > 1:
        metrics["roc_auc"] = float(roc_auc_score(y_test, test_scores))
        metrics["average_precision"] = float(average_precision_score(y_test, test_scores))
    for name, threshold in (
        ("deny_credit", policy.deny_credit_at),
        ("challenge", policy.challenge_at),
    ):
        predicted = (test_scores >= threshold).astype(int)
        metrics["at_thresholds"][name] = {
            "threshold": threshold,
            "precision": float(precision_score(y_test, predicted, zero_division=0)),
            "recall": float(recall_score(y_test, predicted, zero_division=0)),
        }
    return TrainingReport(replace(model, metrics=metrics), metrics)


def export(ensemble: Any, platt: Any | None, *, version: str) -> ExportedModel:
    """The arrays serving needs, from a fitted GradientBoostingClassifier (binary) and an
    optional Platt scaler fitted on its decision_function."""
    prior = float(ensemble.init_.class_prior_[1])
    trees = []
    for (estimator,) in ensemble.estimators_:
        t = estimator.tree_
        trees.append(
            Tree(
                feature=tuple(int(f) if f >= 0 else 0 for f in t.feature),
                threshold=tuple(float(v) for v in t.threshold),
                left=tuple(int(c) for c in t.children_left),
                right=tuple(int(c) for c in t.children_right),
                value=tuple(float(v) for v in t.value[:, 0, 0]),
            )
        )
    return ExportedModel(
        version=version,
        features=FEATURE_NAMES,
        trees=tuple(trees),
        learning_rate=float(ensemble.learning_rate),
        baseline=float(np.log(prior / (1 - prior))),
        calibration_a=float(platt.coef_[0][0]) if platt is not None else 1.0,
        calibration_b=float(platt.intercept_[0]) if platt is not None else 0.0,
        trained_at=time.time(),
    )
