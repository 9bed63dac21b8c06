"""The campaigns a machine's workers last loaded, kept on its disk for a store outage.

A worker keeps the campaigns it has served in memory, so when the store goes away it still
redirects their clicks. A worker that starts during the outage (gunicorn replaced one that was
recycled or crashed, or the whole server restarted) has nothing in memory, and every click on
it answered the busy page until the store came back: a valid link leading nowhere. Each view a
worker loads from the store is also written here, under ``REFGATE_DATA_DIR/campaigns/``, and a
worker that cannot reach the store serves from the last one written (unscored, no credit, as any
click in an outage). What this machine never loaded still gets the busy page.

Files are replaced whole (a temporary file renamed over the old one), so a reader never sees a
half-written campaign, and written only when the campaign's version changed.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)


class CampaignDiskCache:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        #: campaign id -> the version this process last wrote or read (saves rewriting it).
        self._written: dict[int, int] = {}

    def _path(self, campaign_id: int) -> Path:
        return self.directory / f"{campaign_id}.json"

    def save(self, campaign_id: int, version: int, document: bytes) -> None:
        """Keep ``document`` (the campaign's JSON as the store holds it) at ``version``. A disk
        that refuses is logged, never raised: the click being served does not depend on it."""
        if self._written.get(campaign_id) == version:
            return
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            descriptor, temporary = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            try:
                with os.fdopen(descriptor, "wb") as file:
                    file.write(b"%d\n" % version + document)
                os.replace(temporary, self._path(campaign_id))
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as exc:
            log.warning("could not keep campaign %s on disk for an outage: %s", campaign_id, exc)
            return
        self._written[campaign_id] = version

    def load(self, campaign_id: int) -> tuple[int, bytes] | None:
        """The version and JSON last kept for the campaign, or None."""
        try:
            version, _, document = self._path(campaign_id).read_bytes().partition(b"\n")
            return int(version), document
        except (OSError, ValueError):
            return None

    def forget(self, campaign_id: int) -> None:
        """The store no longer has the campaign: neither does the disk."""
        self._written.pop(campaign_id, None)
        self._path(campaign_id).unlink(missing_ok=True)
