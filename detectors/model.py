"""A trained model as serving needs it: plain arrays in JSON, scored in pure Python.

The model is a small gradient-boosted ensemble of shallow regression trees (scikit-learn's
GradientBoostingClassifier) followed by Platt scaling (a logistic on the ensemble's margin,
fitted on a separate split). A document carries its feature list (which must match
``detectors.features.FEATURE_NAMES``), the trees as parallel arrays, the calibration, and a
SHA-256 over its canonical JSON body, so a corrupted or hand-edited document is refused.

No pickle is loaded at serve time. For speed the trees are compiled, once per model, into one
plain Python function of nested comparisons generated from the verified numbers (only numbers
are interpolated into it), which scores a click in a few microseconds; ``margin_reference``
walks the arrays instead and is what the tests compare with.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from detectors.features import FEATURE_NAMES

KIND = "gradient_boosting"


#: A version name: shown in lists and logs, used as a key (no spaces, no control characters).
VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ModelError(ValueError):
    """A model document that cannot be served: wrong features, bad hash, malformed."""


@dataclass(frozen=True)
class Tree:
    """One regression tree as parallel arrays; a node is a leaf when ``left[node] == -1``."""

    feature: tuple[int, ...]
    threshold: tuple[float, ...]
    left: tuple[int, ...]
    right: tuple[int, ...]
    value: tuple[float, ...]

    def leaf(self, x: Sequence[float]) -> float:
        node = 0
        while self.left[node] != -1:
            node = (
                self.left[node]
                if x[self.feature[node]] <= self.threshold[node]
                else self.right[node]
            )
        return self.value[node]

    def path_contributions(self, x: Sequence[float], out: list[float]) -> None:
        """Add to ``out[feature]`` how much each split on the path moved the value (Saabas)."""
        node = 0
        while self.left[node] != -1:
            child = (
                self.left[node]
                if x[self.feature[node]] <= self.threshold[node]
                else self.right[node]
            )
            out[self.feature[node]] += self.value[child] - self.value[node]
            node = child


@dataclass(frozen=True)
class ExportedModel:
    version: str
    features: tuple[str, ...]
    trees: tuple[Tree, ...]
    learning_rate: float
    #: The ensemble's starting margin (log-odds of the training prior).
    baseline: float
    #: Platt scaling of the margin: p = 1 / (1 + exp(-(a * margin + b))).
    calibration_a: float = 1.0
    calibration_b: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)
    trained_at: float = 0.0
    _compiled: Callable[[Sequence[float]], float] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    # -- scoring --------------------------------------------------------------------------------

    def margin(self, x: Sequence[float]) -> float:
        compiled = self._compiled
        if compiled is None:
            compiled = _compile(self)
            object.__setattr__(self, "_compiled", compiled)
        return compiled(x)

    def margin_reference(self, x: Sequence[float]) -> float:
        return self.baseline + self.learning_rate * sum(tree.leaf(x) for tree in self.trees)

    def predict(self, x: Sequence[float]) -> float:
        """Probability that the click is fraudulent."""
        return _sigmoid(self.calibration_a * self.margin(as_float32(x)) + self.calibration_b)

    def top_factors(self, x: Sequence[float], limit: int = 3) -> list[tuple[str, float]]:
        """The features that pushed this click's margin up most (path contributions)."""
        totals = [0.0] * len(self.features)
        x = as_float32(x)  # the thresholds compare as the compiled scorer does
        for tree in self.trees:
            tree.path_contributions(x, totals)
        ranked = sorted(
            (
                (name, self.learning_rate * total)
                for name, total in zip(self.features, totals, strict=True)
            ),
            key=lambda item: -item[1],
        )
        return [item for item in ranked if item[1] > 0.25][:limit]

    # -- documents ------------------------------------------------------------------------------

    def body(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "kind": KIND,
            "features": list(self.features),
            "learning_rate": self.learning_rate,
            "baseline": self.baseline,
            "trees": [
                {
                    "feature": list(t.feature),
                    "threshold": list(t.threshold),
                    "left": list(t.left),
                    "right": list(t.right),
                    "value": list(t.value),
                }
                for t in self.trees
            ],
            "calibration": {"a": self.calibration_a, "b": self.calibration_b},
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
            if document.get("kind") != KIND:
                raise ModelError(f"unknown model kind {document.get('kind')!r}")
            if tuple(document["features"]) != FEATURE_NAMES:
                raise ModelError("model was trained on a different feature list")
            trees = tuple(_tree(raw, len(FEATURE_NAMES)) for raw in document["trees"])
            calibration = document.get("calibration") or {}
            version = document["version"]
            if not isinstance(version, str) or not VERSION.fullmatch(version):
                raise ModelError(
                    "model version must be 1-64 ASCII letters (A-Z, a-z), digits (0-9), '.', "
                    "'_' or '-', starting with a letter or digit"
                )
            numbers = {
                "learning_rate": float(document["learning_rate"]),
                "baseline": float(document["baseline"]),
                "calibration a": float(calibration.get("a", 1.0)),
                "calibration b": float(calibration.get("b", 0.0)),
            }
            for name, value in numbers.items():
                if not math.isfinite(value):  # json.loads takes NaN and Infinity
                    raise ModelError(f"model {name} is not a finite number")
            return cls(
                version=version,
                features=tuple(document["features"]),
                trees=trees,
                learning_rate=numbers["learning_rate"],
                baseline=numbers["baseline"],
                calibration_a=numbers["calibration a"],
                calibration_b=numbers["calibration b"],
                metrics=dict(document.get("metrics", {})),
                trained_at=float(document.get("trained_at", 0.0)),
            )
        except ModelError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelError(f"malformed model document: {exc}") from None


def _tree(raw: dict[str, Any], n_features: int) -> Tree:
    tree = Tree(
        feature=tuple(int(v) for v in raw["feature"]),
        threshold=tuple(float(v) for v in raw["threshold"]),
        left=tuple(int(v) for v in raw["left"]),
        right=tuple(int(v) for v in raw["right"]),
        value=tuple(float(v) for v in raw["value"]),
    )
    size = len(tree.value)
    if not size or not all(
        len(a) == size for a in (tree.feature, tree.threshold, tree.left, tree.right)
    ):
        raise ModelError("tree arrays do not line up")
    for node in range(size):
        if tree.left[node] == -1:
            continue
        # Children come after their parent: a walk always ends, and the code below is a tree.
        if not (node < tree.left[node] < size and node < tree.right[node] < size):
            raise ModelError("tree node points outside the tree or backwards")
        if not 0 <= tree.feature[node] < n_features:
            raise ModelError("tree node names a feature the model does not have")
        if not math.isfinite(tree.threshold[node]):
            raise ModelError("tree threshold is not a finite number")
    if not all(math.isfinite(v) for v in tree.value):
        raise ModelError("tree value is not a finite number")
    return tree


def _compile(model: ExportedModel) -> Callable[[Sequence[float]], float]:
    """One function of nested comparisons for the whole ensemble (only numbers go in)."""
    # Features unpacked into locals once: a local is cheaper to read than x[i].
    names = ", ".join(f"f{i}" for i in range(len(model.features)))
    lines = ["def margin(x):", f"    {names}, = x", "    s = 0.0"]

    def emit(tree: Tree, node: int, depth: int) -> None:
        pad = "    " * depth
        if tree.left[node] == -1:
            lines.append(f"{pad}s += {tree.value[node]!r}")
            return
        lines.append(f"{pad}if f{tree.feature[node]:d} <= {tree.threshold[node]!r}:")
        emit(tree, tree.left[node], depth + 1)
        lines.append(f"{pad}else:")
        emit(tree, tree.right[node], depth + 1)

    for tree in model.trees:
        emit(tree, 0, 1)
    lines.append(f"    return {model.baseline!r} + {model.learning_rate!r} * s")
    namespace: dict[str, Any] = {"__builtins__": {}}
    exec(compile("\n".join(lines), f"<model {model.version}>", "exec"), namespace)  # noqa: S102
    function: Callable[[Sequence[float]], float] = namespace["margin"]
    return function


def as_float32(x: Sequence[float]) -> array[float]:
    """The features as scikit-learn's trees compare them (float32), so a value close to a
    threshold goes the same way here as in training."""
    return array("f", x)


def _sigmoid(z: float) -> float:
    if z < -700:
        return 0.0
    return 1.0 / (1.0 + math.exp(-z))


def _digest(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
