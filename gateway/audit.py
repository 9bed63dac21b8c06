"""The audit log of staff actions: who did what to what, when, and from where.

"From where" is the client's network prefix (/24 or /48) and a salted hash of its address
(gateway.signals.IpHasher), never the raw address. Entries go to one capped Redis stream.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from gateway.signals import IpHasher, network_prefix
from gateway.store import keys

#: Entries kept (approximately: the stream is trimmed with MAXLEN ~).
MAX_ENTRIES = 100_000


@dataclass(frozen=True)
class AuditEntry:
    id: str
    at: float
    actor: str
    action: str
    target: str
    detail: dict[str, Any]
    network: str
    ip_hash: str


class AuditLog:
    def __init__(self, store: Any, hasher: IpHasher) -> None:
        self._redis = store
        self._hash = hasher

    def record(
        self,
        actor: str,
        action: str,
        target: str = "",
        ip: str = "",
        detail: dict[str, Any] | None = None,
        now: float | None = None,
    ) -> None:
        self._redis.xadd(
            keys.AUDIT_LOG,
            {
                "at": repr(time.time() if now is None else now),
                "actor": actor,
                "action": action,
                "target": target,
                "detail": json.dumps(detail or {}, ensure_ascii=False),
                "net": network_prefix(ip) if ip else "",
                "ip": self._hash(ip) if ip else "",
            },
            maxlen=MAX_ENTRIES,
            approximate=True,
        )

    def network_hash(self, ip: str) -> str:
        """The salted hash of the client's network prefix (login throttling keys on it)."""
        return self._hash(network_prefix(ip) or ip)

    def recent(
        self, limit: int = 100, before: str | None = None, actor: str | None = None
    ) -> list[AuditEntry]:
        """Newest first; ``before`` pages on from an entry id. Filtering by actor scans at most
        ten pages."""
        out: list[AuditEntry] = []
        cursor = f"({before}" if before else "+"
        for _ in range(10 if actor else 1):
            rows = self._redis.xrevrange(keys.AUDIT_LOG, cursor, "-", count=limit)
            for entry_id, fields in rows:
                entry = _entry(entry_id, fields)
                if actor is None or entry.actor == actor:
                    out.append(entry)
            if len(rows) < limit or len(out) >= limit:
                break
            cursor = f"({rows[-1][0].decode()}"
        return out[:limit]


def _entry(entry_id: bytes, fields: dict[bytes, bytes]) -> AuditEntry:
    data = {k.decode(): v.decode() for k, v in fields.items()}
    return AuditEntry(
        id=entry_id.decode(),
        at=float(data.get("at", 0)),
        actor=data.get("actor", ""),
        action=data.get("action", ""),
        target=data.get("target", ""),
        detail=json.loads(data.get("detail", "{}")),
        network=data.get("net", ""),
        ip_hash=data.get("ip", ""),
    )
