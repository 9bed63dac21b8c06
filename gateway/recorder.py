"""Recording click events off the request path: batched writes, a local spool when the store fails.

The click path hands each event to :meth:`EventRecorder.record` and returns; the next click of
the same campaign carries it to the store in its own round trip, and a background thread writes
what waits longer. When the store fails, events go to the spool: an append-only JSON-lines file
per process under ``<data dir>/spool``. A drainer delivers spooled events once the store answers
again; ``click.lua`` skips click ids it has recorded, so an event delivered twice counts once.

Spool durability: every batch is written and flushed to the OS at once (a crashed worker loses
nothing); ``fsync`` runs at most once per second, like Redis's ``appendfsync everysec``, so a
power cut can lose up to a second of spooled events.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError

from gateway.clickcall import click_call
from gateway.events import ClickEvent
from gateway.logs import OutageLog
from gateway.metrics import Metrics
from gateway.store import keys, scripts
from gateway.store.scripts import execute_with_scripts
from gateway.validation import ascii_digits

log = logging.getLogger(__name__)

FSYNC_INTERVAL = 1.0
DRAIN_BATCH = 500
#: Seconds between the flusher's writes of the automated-request counts (an explicit flush
#: writes them at once).
AUTOMATED_WRITE_EVERY = 1.0


class Spool:
    """Append-only JSON-lines files of events that could not be written to the store."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)  # click events: owner only
        self._lock = threading.Lock()
        self._file: Any = None
        self._file_pid = 0
        self._last_fsync = 0.0
        #: A write failed (a full disk): the file may end in a torn line, so the next write
        #: starts on a new line (an empty line is skipped when read).
        self._torn = False
        #: depth()'s counts: file name -> (inode, bytes counted, lines in them).
        self._counted: dict[str, tuple[int, int, int]] = {}
        self._count_lock = threading.Lock()
        #: Bytes depth() has read, in all (it reads each byte once).
        self.bytes_counted = 0

    @property
    def active_path(self) -> Path:
        return self.directory / f"active-{os.getpid()}.jsonl"

    def append(self, events: Sequence[ClickEvent]) -> None:
        lines = b"".join(event.to_json() + b"\n" for event in events)
        with self._lock:
            try:
                if self._file is None or self._file_pid != os.getpid():
                    self._file = open(self.active_path, "ab")  # noqa: SIM115
                    self._file_pid = os.getpid()
                    if self._torn and _ends_torn(self.active_path):
                        lines = b"\n" + lines
                self._file.write(lines)
                self._file.flush()
                now = time.monotonic()
                if now - self._last_fsync >= FSYNC_INTERVAL:
                    os.fsync(self._file.fileno())
                    self._last_fsync = now
            except OSError:
                # A full or failing disk. The file object is dropped with what it buffered
                # (kept, it failed every later write and the drain's rotation too, for good);
                # the next write opens the file again.
                self._drop_file()
                self._torn = True
                raise
            self._torn = False

    def _drop_file(self) -> None:
        """Close the open file, whatever state a failed write left it in (under the lock)."""
        file, self._file = self._file, None
        if file is None:
            return
        # Its buffer may not be writable: those events are counted lost by the caller.
        with contextlib.suppress(OSError, ValueError):
            file.close()

    def depth(self) -> int:
        """Events waiting in spool files (their lines; for /readyz and /metrics).

        Each call had read every spool file whole: after an hour's outage at a festival's rate,
        gigabytes at every scrape and every readiness probe, in a serving worker's thread. A
        spool file only grows until it is renamed (claimed) or deleted, so each file's lines
        are counted once and each call reads only what was appended since."""
        with self._count_lock:
            counted: dict[str, tuple[int, int, int]] = {}
            total = 0
            for path in self.directory.glob("*.jsonl"):
                try:
                    with open(path, "rb") as fh:
                        inode = os.fstat(fh.fileno()).st_ino
                        known, offset, lines = self._counted.get(path.name, (inode, 0, 0))
                        if known != inode or os.fstat(fh.fileno()).st_size < offset:
                            offset = lines = 0  # another file by that name
                        fh.seek(offset)
                        while chunk := fh.read(1 << 20):
                            lines += chunk.count(b"\n")
                            offset += len(chunk)
                            self.bytes_counted += len(chunk)
                except FileNotFoundError:
                    continue
                counted[path.name] = (inode, offset, lines)
                total += lines
            self._counted = counted
            return total

    def claim(self) -> list[Path]:
        """Take ownership of spool files that are ready to deliver.

        This process's own active file is rotated under the lock; files of dead processes and
        files left claimed by dead processes are renamed to this process. ``rename`` is atomic,
        so two drainers never claim the same file.
        """
        pid = os.getpid()
        with self._lock:
            if self._file is not None and self._file_pid == pid:
                # Written and flushed already; only the power-cut guarantee is late.
                with contextlib.suppress(OSError, ValueError):
                    os.fsync(self._file.fileno())
                self._drop_file()
            if self.active_path.exists():
                self._rename(self.active_path, f"claimed-{pid}-{time.time_ns()}.jsonl")
        claimed = []
        for path in sorted(self.directory.glob("*.jsonl")):
            kind, _, rest = path.stem.partition("-")
            owner = int(rest.split("-")[0]) if ascii_digits(rest.split("-")[0]) else 0
            if kind == "claimed" and owner == pid:
                claimed.append(path)
            elif kind in {"active", "claimed"} and owner and not _alive(owner):
                target = self._rename(path, f"claimed-{pid}-{time.time_ns()}.jsonl")
                if target is not None:
                    claimed.append(target)
        return claimed

    def _rename(self, path: Path, name: str) -> Path | None:
        target = self.directory / name
        try:
            path.rename(target)
        except FileNotFoundError:
            return None
        return target

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                try:
                    self._file.flush()
                    os.fsync(self._file.fileno())
                except (OSError, ValueError) as exc:
                    log.error("could not flush the spool file %s: %s", self.active_path, exc)
                self._drop_file()


def _ends_torn(path: Path) -> bool:
    """Whether the file ends in a partial line (a write that failed half way)."""
    with open(path, "rb") as fh:
        if fh.seek(0, os.SEEK_END) == 0:
            return False
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) != b"\n"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class EventRecorder:
    """Holds click events until a round trip to the store carries them, then spools what fails.

    Events wait per campaign. The click path takes the waiting events of its campaign into its
    own round trip (see ``click.lua``), so under load recording costs no extra round trip and no
    thread hand-off. A background thread, waking every ``flush_after`` seconds, writes events
    that waited that long (a quiet campaign) and drains the spool once the store is back.
    """

    def __init__(
        self,
        client: Any,
        spool: Spool,
        *,
        click_ttl: int = 30 * 86400,
        retention_seconds: int = 90 * 86400,
        flush_after: float = 0.05,
        carry_min: int = 8,
        drain_interval: float = 2.0,
        metrics: Metrics | None = None,
    ) -> None:
        self._redis = client
        self.spool = spool
        self.metrics = metrics or Metrics()
        self.click_ttl = click_ttl
        self._retention_ms = retention_seconds * 1000
        self._flush_after = flush_after
        self.carry_min = carry_min
        self._drain_interval = drain_interval
        self._pending: dict[int, collections.deque[ClickEvent]] = {}
        #: Per campaign, since when events have been waiting (monotonic): set when its queue
        #: goes from empty to not, so it is the oldest waiting event's time or earlier.
        self._waiting_since: dict[int, float] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._thread_pid = 0
        self._write_lock = threading.Lock()
        #: One drain at a time in a process: the files this process claimed are listed to every
        #: drain of it, so a drain by a request beside the recorder's own delivered each event
        #: twice (harmless in the store, but counted twice) and could find a file gone mid-read.
        self._drain_lock = threading.Lock()
        self._last_drain = 0.0
        self.store_ok = True
        #: (campaign id, numeric referrer id) -> requests from automation agents on the sharer's
        #: link (answered with a preview, see note_automated), waiting for the flusher.
        self._automated: collections.Counter[tuple[int, int]] = collections.Counter()
        self._automated_lock = threading.Lock()
        self._automated_written = 0.0
        self.recorded = 0
        self.spooled = 0
        self.drained = 0
        #: Events neither the store nor the spool took (the store down and the disk full).
        self.lost = 0
        #: Why the latest spool write failed ("" once one succeeds): /readyz shows it.
        self.spool_error = ""
        self.spool_outage = OutageLog(
            log,
            "spool write failed while the store is unavailable, click events lost",
            "click events recorded again (store or spool)",
            remind=60.0,
            level=logging.ERROR,
        )

    # -- the click path's side -----------------------------------------------------------------

    def record(self, event: ClickEvent) -> None:
        queue = self._pending.get(event.campaign_id)
        if queue is None:
            queue = self._pending.setdefault(event.campaign_id, collections.deque())
        if not queue:
            self._waiting_since[event.campaign_id] = time.monotonic()
        queue.append(event)
        if self._thread_pid != os.getpid():
            self._start()

    def note_automated(self, campaign_id: int, referrer_id: int) -> None:
        """Count a request from an automation agent on a referrer's link (answered with a
        preview, never a click): kept in memory and written by the flusher, at most once every
        AUTOMATED_WRITE_EVERY seconds, so the request pays no store call and a flood of them
        costs one small pipeline a second per worker."""
        with self._automated_lock:
            self._automated[(campaign_id, referrer_id)] += 1
        if self._thread_pid != os.getpid():  # a worker that served only previews so far
            self._start()

    def take(self, campaign_id: int, limit: int = 32) -> list[ClickEvent]:
        """Waiting events of one campaign, for the click path to carry in its round trip."""
        queue = self._pending.get(campaign_id)
        taken: list[ClickEvent] = []
        while queue and len(taken) < limit:
            try:
                taken.append(queue.popleft())
            except IndexError:  # the flusher emptied it meanwhile
                break
        return taken

    def carry(self, campaign_id: int) -> list[ClickEvent]:
        """Waiting events for a click's round trip, once enough wait to share the script's
        writes (each counter once per batch, not once per event); until then they wait for a
        later click or for the flusher, which writes whatever waited ``flush_after``."""
        queue = self._pending.get(campaign_id)
        if queue is None or len(queue) < self.carry_min:
            return []
        return self.take(campaign_id)

    def put_back(self, events: Sequence[ClickEvent]) -> None:
        """Events a failed round trip carried: the flusher spools them (or retries)."""
        for event in events:
            self.record(event)

    def stream_minid(self) -> str:
        return str(int(time.time() * 1000) - self._retention_ms)

    def start(self) -> None:
        """Start this process's flusher and drainer now rather than at its first event:
        gunicorn's workers (gateway.server) do, so spool files an earlier run or a dead
        worker left are delivered without waiting for a click."""
        if self._thread_pid != os.getpid():
            self._start()

    def _start(self) -> None:
        # Threads do not survive fork: each gunicorn worker starts its own on first use.
        self._thread_pid = os.getpid()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="refgate-recorder", daemon=True)
        self._thread.start()

    # -- the background side -------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.wait(self._flush_after):
            try:
                self.flush(waited=self._flush_after)
                # Also while the store seems down: events carried by clicks may be all that
                # reaches it, so a successful drain is what notices that it is back.
                if time.monotonic() - self._last_drain >= self._drain_interval:
                    self.drain()
            except Exception:  # the recorder thread must outlive any one bad batch
                log.exception("event recorder iteration failed")

    def pending(self) -> int:
        return sum(len(queue) for queue in list(self._pending.values()))

    def flush(self, waited: float = 0.0) -> int:
        """Write the waiting events of every campaign whose events have waited ``waited``
        seconds or more (every waiting event by default); returns how many were taken.

        The flusher passes its period: under load a campaign's events are carried by its next
        clicks long before that (every ``carry_min`` clicks), so it writes only for quiet
        campaigns, instead of a round trip of its own for a few events every period."""
        batch: list[ClickEvent] = []
        oldest = time.monotonic() - waited
        for campaign_id in list(self._pending):
            if waited and self._waiting_since.get(campaign_id, 0.0) > oldest:
                continue
            batch += self.take(campaign_id, limit=1_000_000)
        if batch:
            self._deliver(batch)
        now = time.monotonic()
        if not waited or now - self._automated_written >= AUTOMATED_WRITE_EVERY:
            self._write_automated(now)
        return len(batch)

    def _write_automated(self, now: float) -> None:
        """Add the automation counts waiting since the last write to the store (one pipeline);
        best effort: a store outage loses them (they are evidence, not money)."""
        with self._automated_lock:
            if not self._automated:
                return
            counts, self._automated = self._automated, collections.Counter()
        self._automated_written = now
        try:
            pipe = self._redis.pipeline(transaction=False)
            for (campaign_id, referrer_id), count in sorted(counts.items()):
                pipe.hincrby(keys.campaign_keys(campaign_id).automated, str(referrer_id), count)
            pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("could not count %d links' automated requests: %s", len(counts), exc)
            self.metrics.store_error("automated")

    def _deliver(self, batch: list[ClickEvent]) -> None:
        try:
            with self._write_lock:
                self.recorded += self.write(batch)
        except (RedisError, OSError) as exc:
            if self.store_ok:
                log.warning("store unavailable, spooling click events: %s", exc)
            self.store_ok = False
            self.metrics.store_error("record")
            try:
                self.spool.append(batch)
            except OSError as spool_exc:
                # Neither the store nor the spool took them: say how many, not a traceback
                # every 50 ms that starts with the store's error.
                self.lost += len(batch)
                self.metrics.lost.inc(len(batch))
                self.spool_error = f"{spool_exc.__class__.__name__}: {spool_exc}"
                self.spool_outage.failed(
                    f"{len(batch)} click events lost ({self.lost} in all): {spool_exc}"
                )
                return
            self._recorded_again()
            self.spooled += len(batch)
            self.metrics.spooled.inc(len(batch))
            return
        self.store_ok = True
        self._recorded_again()

    def _recorded_again(self) -> None:
        """Events reach the store or the spool: no longer lost (ends what /readyz and the log
        said; the spool may never be written again once the store is back)."""
        if self.spool_error:
            self.spool_error = ""
            self.spool_outage.ok()

    def write(self, batch: Sequence[ClickEvent]) -> int:
        """Record events in one pipeline (one round trip per node); returns how many were new."""
        script = scripts.script("click")
        ttl, minid = self.click_ttl, self.stream_minid()
        by_campaign: dict[int, list[ClickEvent]] = collections.defaultdict(list)
        for event in batch:
            by_campaign[event.campaign_id].append(event)

        def build(pipe: Any) -> None:
            for campaign_id, events in by_campaign.items():
                for start in range(0, len(events), WRITE_CHUNK):
                    chunk = events[start : start + WRITE_CHUNK]
                    keys_, args = click_call(campaign_id, None, chunk, ttl, minid)
                    script.queue(pipe, keys_, args)

        replies = execute_with_scripts(self._redis, build, [script])
        return sum(int(reply[2]) for reply in replies)

    def count(self, campaign_id: int, counter: str, now: float | None = None) -> None:
        """Count something that is not a click (a passed challenge) in the campaign's stats and
        timeline; best effort: a store outage loses the count, never the request."""
        ck = keys.campaign_keys(campaign_id)
        hour = int(time.time() if now is None else now) // 3600
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.hincrby(ck.counters, counter, 1)
            pipe.hincrby(ck.timeline, f"{hour}|{counter}", 1)
            pipe.execute()
        except RedisError as exc:
            log.warning("could not count %s: %s", counter, exc)

    def drain(self) -> int:
        """Deliver spooled events; returns how many were newly recorded."""
        with self._drain_lock:
            return self._drain()

    def _drain(self) -> int:
        self._last_drain = time.monotonic()
        if not self.store_ok:
            # Ask before claiming: each claim rotates this worker's spool file, and claiming
            # every 2 s of an outage left a file per worker per 2 s (an hour: 1,800 each), and as
            # many "drained" lines, each counting every file left, once the store was back.
            try:
                self._redis.ping()
            except (RedisError, OSError):
                self.metrics.store_error("drain")
                return 0
            self.store_ok = True
            self._recorded_again()
        delivered = 0
        for path in self.spool.claim():
            read = new = 0
            try:
                for batch in _batches(_read_events(path), DRAIN_BATCH):
                    with self._write_lock:
                        new += self.write(batch)
                    read += len(batch)
                    self.drained += len(batch)
                    self.metrics.drained.inc(len(batch))
            except (RedisError, OSError) as exc:
                if self.store_ok:
                    log.warning("spool drain interrupted, will retry %s: %s", path.name, exc)
                self.metrics.store_error("drain")
                self.store_ok = False
                break
            finally:
                delivered += new
            path.unlink(missing_ok=True)
            self.store_ok = True
            # The line an operator looks for after an outage: the spool is being emptied (the
            # warnings said when it filled), and how much of it the store had not seen.
            log.info(
                "drained %d spooled click events from %s (%d newly recorded), %d left",
                read,
                path.name,
                new,
                self.spool.depth(),
            )
        return delivered

    def close(self) -> None:
        self._stopping.set()
        if self._thread is not None and self._thread_pid == os.getpid():
            self._thread.join(timeout=5)
        self.flush()
        self.spool.close()


#: Events per script call: bounds the time one call holds the (single-threaded) server.
WRITE_CHUNK = 64


def _read_events(path: Path) -> Iterable[ClickEvent]:
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                yield ClickEvent.from_json(line)
            except (ValueError, TypeError):
                # A torn last line after a crash: keep the rest, say what was skipped.
                log.error("skipping unreadable spool line %s:%d", path.name, number)


def _batches(items: Iterable[ClickEvent], size: int) -> Iterable[list[ClickEvent]]:
    batch: list[ClickEvent] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
