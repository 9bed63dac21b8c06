"""Training the click model with scikit-learn and exporting it for serving (never pickled).

A gradient-boosted ensemble of shallow trees (it finds the interactions a linear model cannot:
a steady pace matters at night, a Referer matters from a desktop), calibrated with Platt scaling.
Judged by cross-validation grouped by referrer: the clicks are cut into folds by referrer (a
referrer's clicks are all in one fold, so no score is flattered by memorising sharers), each
fold is scored by an ensemble trained on the others, and the calibration is fitted on, and the
metrics computed from, those out-of-fold scores. The model served is then trained on every
click: attacks come in few operations, each behind few referrers, and a held-out split by
referrer used to keep whole kinds of attack (every scraped link of a log, say) out of the model
it exported. The export is plain arrays (detectors.model.ExportedModel); a test checks that the
export scores exactly as scikit-learn does.
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
#: Cross-validation folds (by referrer) for the calibration and the metrics.
FOLDS = 4


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
            f"trained on {m['train_clicks']} clicks ({m['train_fraud']} fraud) of "
            f"{m['test_referrers']} referrers; calibrated and judged {m['calibration_split']} "
            f"({m['folds']} folds: each click scored by a model that did not see it)",
            f"ROC-AUC {m['roc_auc']:.4f}   average precision {m['average_precision']:.4f}",
        ]
        for name, row in m["at_thresholds"].items():
            out.append(
                f"score >= {row['threshold']:.2f} ({name}): precision {row['precision']:.4f} "
                f"recall {row['recall']:.4f}"
            )
        return out

    def unfit(self) -> str | None:
        """Why this model must not score clicks, or None: judged out of fold, a
        model that ranks fraud no better than chance, or whose scores run backwards, would deny
        honest people credit (too little or too narrow data does that)."""
        m = self.metrics
        if self.model.calibration_a <= 0:
            return "its calibrated scores run backwards (a negative slope)"
        if not m["roc_auc"] >= MIN_ROC_AUC:
            return (
                f"out-of-fold ROC-AUC {m['roc_auc']:.2f} is under {MIN_ROC_AUC}: it ranks fraud "
                "little better than chance"
            )
        return None


#: The least out-of-fold ROC-AUC a model must reach to be saved without --force.
MIN_ROC_AUC = 0.6


def train(data: LabelledClicks, *, seed: int = 0, folds: int = FOLDS) -> TrainingReport:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import (
        average_precision_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    if len(data) < 50:
        raise ValueError(f"need at least 50 labelled clicks to train, got {len(data)}")
    x = np.asarray(data.features, dtype=float)
    y = np.asarray(data.labels, dtype=int)
    groups = np.asarray(data.groups)
    if len(set(y.tolist())) < 2:
        raise ValueError("the labels have one class only: need both fraudulent and honest clicks")
    splits, split_by = _folds(y, groups, folds, seed)
    # Out-of-fold margins: every click scored by an ensemble that never saw its referrer.
    margins = np.zeros(len(y))
    for fit_idx, held_idx in splits:
        margins[held_idx] = (
            _ensemble(seed).fit(x[fit_idx], y[fit_idx]).decision_function(x[held_idx])
        )
    platt = LogisticRegression(C=1e6, max_iter=1000)
    platt.fit(margins.reshape(-1, 1), y)
    ensemble = _ensemble(seed).fit(x, y)
    # The time, and milliseconds: two trainings finishing in one second get two names (a name
    # is one model for good: gateway.models).
    now = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    model = export(ensemble, platt, version=f"m{stamp}-{int(now * 1000) % 1000:03d}")
    scores = platt.predict_proba(margins.reshape(-1, 1))[:, 1]
    policy = Policy()
    metrics: dict[str, Any] = {
        "train_clicks": len(y),
        "train_fraud": int(y.sum()),
        "folds": len(splits),
        "calibration_split": f"out of fold, {split_by}",
        "test_clicks": len(y),
        "test_fraud": int(y.sum()),
        "test_referrers": len(set(groups.tolist())),
        "roc_auc": float(roc_auc_score(y, scores)),
        "average_precision": float(average_precision_score(y, scores)),
        "at_thresholds": {},
    }
    for name, threshold in (
        ("deny_credit", policy.deny_credit_at),
        ("challenge", policy.challenge_at),
    ):
        predicted = (scores >= threshold).astype(int)
        metrics["at_thresholds"][name] = {
            "threshold": threshold,
            "precision": float(precision_score(y, predicted, zero_division=0)),
            "recall": float(recall_score(y, predicted, zero_division=0)),
        }
    return TrainingReport(replace(model, metrics=metrics), metrics)


def _ensemble(seed: int) -> Any:
    from sklearn.ensemble import GradientBoostingClassifier

    return GradientBoostingClassifier(
        n_estimators=TREES, max_depth=DEPTH, learning_rate=0.1, subsample=0.8, random_state=seed
    )


Split = tuple[np.ndarray, np.ndarray]


def _folds(y: np.ndarray, groups: np.ndarray, folds: int, seed: int) -> tuple[list[Split], str]:
    """Folds by referrer, each class on the fitting side of every fold; else (too few
    referrers of one class) folds by click, stratified by label: leaky across a referrer's
    clicks, and the metrics say so."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    per_class = [len(set(groups[y == label].tolist())) for label in (0, 1)]
    if min(per_class) >= 2:
        k = min(folds, len(set(groups.tolist())))
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        splits = list(splitter.split(y, y, groups))
        if all(len(set(y[fit].tolist())) == 2 for fit, _ in splits):
            return splits, "by referrer"
    if min(np.bincount(y, minlength=2)) < 2:
        raise ValueError("too few clicks of one class to cross-validate")
    k = min(folds, int(min(np.bincount(y, minlength=2))))
    splitter_by_click = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return (
        list(splitter_by_click.split(y, y)),
        "by click (too few referrers of one class to split by referrer)",
    )


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
