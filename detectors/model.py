"""A trained model as serving needs it: plain arrays in JSON, scored in pure Python.

No pickle is loaded at serve time. A model document carries its feature list (which must match
``detectors.features.FEATURE_NAMES``), standardisation, logistic-regression weights, an optional
isotonic calibration (as breakpoints), and a SHA-256 over its canonical JSON body so a corrupted
or hand-edited document is refused.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from detectors.features import FEATURE_NAMES


class ModelError(ValueError):
    """A model document that cannot be served: wrong features, bad hash, malformed."""


@dataclass(frozen=True)
class ExportedModel:
    version: str
    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    #: Isotonic calibration breakpoints (raw probability -> calibrated), or empty.
    calibration_x: tuple[float, ...] = ()
    calibration_y: tuple[float, ...] = ()
    metrics: dict[str, Any] = field(default_factory=dict)
    trained_at: float = 0.0

    # -- scoring --------------------------------------------------------------------------------

    def raw(self, x: Sequence[float]) -> float:
        z = self.intercept
        for value, mean, scale, weight in zip(x, self.mean, self.scale, self.coef, strict=True):
            z += weight * (value - mean) / scale
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0

    def predict(self, x: Sequence[float]) -> float:
        """Probability that the click is fraudulent."""
        p = self.raw(x)
        if not self.calibration_x:
            return p
        return _interpolate(self.calibration_x, self.calibration_y, p)

    def top_factors(self, x: Sequence[float], limit: int = 3) -> list[tuple[str, float]]:
        """The features pushing this click's score up most (logistic contributions)."""
        contributions = [
            (name, weight * (value - mean) / scale)
            for name, value, mean, scale, weight in zip(
                self.features, x, self.mean, self.scale, self.coef, strict=True
            )
        ]
        return sorted((c for c in contributions if c[1] > 0.5), key=lambda c: -c[1])[:limit]

    # -- documents ------------------------------------------------------------------------------

    def body(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "kind": "logistic_regression",
            "features": list(self.features),
            "mean": list(self.mean),
            "scale": list(self.scale),
            "coef": list(self.coef),
            "intercept": self.intercept,
            "calibration": {"x": list(self.calibration_x), "y": list(self.calibration_y)},
            "metrics": self.metrics,
            "trained_at": self.trained_at,
        }

    def to_json(self) -> str:
        body = self.body()
        return json.dumps({**body, "sha256": _digest(body)}, separators=(",", ":"))

    @property
    def sha256(self) -> str:
        return _digest(self.body())

    @classmethod
    def from_json(cls, text: str | bytes) -> ExportedModel:
        try:
            document = json.loads(text)
            claimed = document.pop("sha256")
            if _digest(document) != claimed:
                raise ModelError("model document does not match its sha256")
            if tuple(document["features"]) != FEATURE_NAMES:
                raise ModelError("model was trained on a different feature list")
            calibration = document.get("calibration") or {}
            model = cls(
                version=str(document["version"]),
                features=tuple(document["features"]),
                mean=tuple(float(v) for v in document["mean"]),
                scale=tuple(float(v) for v in document["scale"]),
                coef=tuple(float(v) for v in document["coef"]),
                intercept=float(document["intercept"]),
                calibration_x=tuple(float(v) for v in calibration.get("x", ())),
                calibration_y=tuple(float(v) for v in calibration.get("y", ())),
                metrics=dict(document.get("metrics", {})),
                trained_at=float(document.get("trained_at", 0.0)),
            )
        except ModelError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"malformed model document: {exc}") from None
        n = len(model.features)
        if not (len(model.mean) == len(model.scale) == len(model.coef) == n):
            raise ModelError("model arrays do not match its feature list")
        if any(s <= 0 for s in model.scale):
            raise ModelError("model scales must be positive")
        if len(model.calibration_x) != len(model.calibration_y):
            raise ModelError("calibration breakpoints do not pair up")
        return model


def _digest(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _interpolate(xs: Sequence[float], ys: Sequence[float], x: float) -> float:
    """Piecewise-linear interpolation, clamped at both ends (as sklearn's IsotonicRegression)."""
    if x <= xs[0]:
        return ys[0]
    if x >= xs[-1]:
        return ys[-1]
    i = bisect.bisect_right(xs, x)
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    if x1 == x0:
        return y1
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
