"""Model versions in the store: every worker scores with the active one.

Models are plain JSON documents (detectors.model.ExportedModel), verified by their SHA-256 on
load; activating a version makes every worker pick it up within seconds (a per-process job polls
the active version), with no restart and no pickle.
"""

from __future__ import annotations

from typing import Any

from detectors.model import ExportedModel, ModelError
from gateway.store import keys


class ModelRegistry:
    def __init__(self, store: Any) -> None:
        self._redis = store

    def save(self, model: ExportedModel) -> None:
        """Keep a version; one name is one model for good (workers compare names only), so a
        different model under a name that exists is refused, and the same one again is a no-op."""
        document = model.to_json()
        if self._redis.hsetnx(keys.MODELS, model.version, document):
            return
        kept = self._redis.hget(keys.MODELS, model.version)
        if kept is None or ExportedModel.from_json(kept).sha256 != model.sha256:
            raise ModelError(
                f"a different model is saved as version {model.version!r} already; give this "
                "one another version name"
            )

    def get(self, version: str) -> ExportedModel:
        raw = self._redis.hget(keys.MODELS, version)
        if raw is None:
            raise KeyError(version)
        return ExportedModel.from_json(raw)

    def list(self) -> list[dict[str, Any]]:
        active = self.active_version()
        out = []
        for version, raw in self._redis.hgetall(keys.MODELS).items():
            try:
                model = ExportedModel.from_json(raw)
            except ModelError as exc:
                out.append({"version": version.decode(), "error": str(exc), "active": False})
                continue
            out.append(
                {
                    "version": model.version,
                    "trained_at": model.trained_at,
                    "sha256": model.sha256,
                    "metrics": model.metrics,
                    "active": model.version == active,
                }
            )
        return sorted(out, key=lambda m: (m.get("trained_at", 0), m["version"]))

    def activate(self, version: str) -> ExportedModel:
        model = self.get(version)  # refuses unknown or damaged versions before switching
        self._redis.set(keys.ACTIVE_MODEL, version)
        return model

    def deactivate(self) -> None:
        """Score with the rules alone."""
        self._redis.delete(keys.ACTIVE_MODEL)

    def active_version(self) -> str | None:
        raw = self._redis.get(keys.ACTIVE_MODEL)
        return raw.decode() if raw else None

    def active(self) -> ExportedModel | None:
        version = self.active_version()
        return self.get(version) if version else None
