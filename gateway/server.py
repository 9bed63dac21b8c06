"""``refgate serve``: gunicorn in front of the app, the embedded store started first if needed."""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from gateway import logs
from gateway.jobsprocess import WORKERS_ENV, JobsProcess, serve_starts_jobs_process
from gateway.metrics import MULTIPROC_ENV, mark_process_dead
from gateway.settings import Settings
from gateway.signals import network_prefix
from gateway.store.embedded import EmbeddedRedis
from gateway.store.storewatch import EmbeddedStoreWatch

log = logging.getLogger(__name__)


class GatewayServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        # Each worker builds its own app after the fork: connections and threads are per process.
        from gateway import create_app

        return create_app()


class GunicornLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger, writing refgate's JSON lines (gateway.logs) from its first line on:
    hooks such as ``when_ready`` come after "Starting gunicorn" and "Listening at". gunicorn
    calls ``setup`` again when it reloads (HUP), which builds new handlers. In the text format,
    gunicorn's own line with refgate's escaping (its lines quote what clients sent)."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        if logs.json_logs():
            formatter: logging.Formatter = logs.JsonFormatter()
            access: logging.Formatter = formatter
        else:
            formatter = logs.TextFormatter(self.error_fmt, self.datefmt)
            access = logs.TextFormatter(self.access_fmt)
        for handler in self.error_log.handlers:
            handler.setFormatter(formatter)
        for handler in self.access_log.handlers:
            handler.setFormatter(access)

    def warning(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(msg, str):
            msg = without_client_address(msg)
        super().warning(msg, *args, **kwargs)


#: gunicorn's line for a request it cannot parse (a request line over the limit, a malformed
#: header), which names the client's raw address; IPv6 addresses hold ":" but never ": ".
_INVALID_FROM = re.compile(r"^(Invalid request from ip=)(\S*?)(: )")


def without_client_address(message: str) -> str:
    """``message`` with a client address gunicorn put in it replaced by its network prefix
    (/24, /48), as refgate keeps addresses anywhere (README, privacy): anyone can make the
    server log a line of this kind, one per request."""
    return _INVALID_FROM.sub(
        lambda m: m.group(1) + (network_prefix(m.group(2)) or "-") + m.group(3), message, count=1
    )


def worker_exit(server: Any, worker: Any) -> None:
    """Flush the worker's pending click events before it goes."""
    app = getattr(worker, "wsgi", None)
    services = getattr(app, "extensions", {}).get("refgate") if app is not None else None
    if services is not None:
        services.close()


def post_worker_init(worker: Any) -> None:
    """The worker's recorder thread starts with the worker, not at its first click: after a
    restart during an outage the spool is drained once the store is back even when no click
    comes (it had waited, `/readyz` saying ready with events in the spool, for traffic)."""
    app = getattr(worker, "wsgi", None)
    services = getattr(app, "extensions", {}).get("refgate") if app is not None else None
    if services is not None:
        services.recorder.start()


def child_exit(server: Any, worker: Any) -> None:
    mark_process_dead(worker.pid)


def worker_threads(max_in_flight: int) -> int:
    """Threads per worker: the admitted requests plus a few that only answer sheds, so a shed is
    decided at once instead of waiting for a busy thread."""
    return max_in_flight + 4


def gunicorn_options(
    host: str, port: int, workers: int, data_dir: Path, threads: int = 12
) -> dict[str, Any]:
    control = data_dir / "gunicorn.ctl"
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        # Threads, so that admission control (gateway/admission.py) sees concurrent requests
        # and how long each queued, and answers the excess at once; a sync worker would leave
        # them in the listen queue. gthread plus a queue-time stamp (gateway/worker.py).
        "worker_class": "gateway.worker.RefgateWorker",
        "threads": threads,
        "timeout": 30,
        "graceful_timeout": 10,
        "keepalive": 2,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "info",
        # The root logger (refgate's own lines) is set up by `refgate serve` before anything
        # logs, and the workers inherit it; gunicorn's own lines come through this class.
        "logger_class": GunicornLogger,
        "worker_exit": worker_exit,
        "post_worker_init": post_worker_init,
        "child_exit": child_exit,
        "proc_name": "refgate",
        # gunicornc's control socket, one per data dir (the default is one per user, shared by
        # every gunicorn); off when the path is too long for a unix socket.
        "control_socket": str(control),
        "control_socket_disable": len(str(control)) > 100,
    }


#: Addresses that mean "every interface": no phone can open a link to them.
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", "[::]", ""})  # noqa: S104 - compared, not bound


def default_public_url(host: str, port: int) -> str:
    """The base of share links when REFGATE_PUBLIC_URL is not set: where the server listens.
    Listening on every interface (the container does), that is no address anyone can open, and
    the links, QR codes and posters minted meanwhile lead nowhere: say so, loudly."""
    url = f"http://{host}:{port}"
    if host in WILDCARD_HOSTS:
        log.warning(
            "REFGATE_PUBLIC_URL is not set: share links, QR codes and posters will point at %s, "
            "which no one else can open; set REFGATE_PUBLIC_URL to the address people reach",
            url,
        )
    return url


#: The files prometheus-client's multiprocess mode keeps: ``<type>_<pid>.db``, a gauge's with
#: its mode (``gauge_livesum_<pid>.db``).
PROMETHEUS_DB = re.compile(
    r"(?:counter|histogram|summary|gauge_(?:live)?(?:all|sum|max|min|mostrecent))_(\d+)\.db"
)


def prepare_metrics_dir(data_dir: Path) -> Path:
    """The multiprocess directory of this server's metrics, emptied: ``<data dir>/metrics``, or
    the operator's ``PROMETHEUS_MULTIPROC_DIR``. prometheus-client's docs say it must be wiped
    between runs: a previous run's files would be added in at every scrape (counters that jump
    at a restart, a dead worker's values forever). Run by the serving process only, before any
    worker starts. The operator's directory is not ours to wipe: only prometheus-client's files
    are removed, and only when that is all it holds and no running refgate process writes them
    (a second server sharing it); otherwise it is left as it is, with an error saying why."""
    configured = os.environ.get(MULTIPROC_ENV) or os.environ.get(MULTIPROC_ENV.lower())
    if not configured:
        metrics_dir = data_dir / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ[MULTIPROC_ENV] = str(metrics_dir)
        return metrics_dir
    metrics_dir = Path(configured)
    metrics_dir.mkdir(parents=True, exist_ok=True)
    ours, others, in_use = [], [], set()
    for entry in metrics_dir.iterdir():
        match = PROMETHEUS_DB.fullmatch(entry.name)
        if match is None or entry.is_symlink() or not entry.is_file():
            others.append(entry.name)
            continue
        ours.append(entry)
        if _refgate_process(int(match.group(1))):
            in_use.add(int(match.group(1)))
    if others:
        log.error(
            "%s=%s holds files that are not prometheus-client's (%s): not cleared, so an "
            "earlier run's metrics may be added in; give it a directory of its own",
            MULTIPROC_ENV,
            metrics_dir,
            ", ".join(sorted(others)[:5]),
        )
    elif in_use:
        log.error(
            "%s=%s is in use by running refgate processes (%s): not cleared; give each "
            "server a directory of its own",
            MULTIPROC_ENV,
            metrics_dir,
            ", ".join(map(str, sorted(in_use))),
        )
    else:
        for entry in ours:
            entry.unlink(missing_ok=True)
        if ours:
            log.info("cleared %d metrics files of an earlier run from %s", len(ours), metrics_dir)
    os.environ[MULTIPROC_ENV] = str(metrics_dir)
    return metrics_dir


def _refgate_process(pid: int) -> bool:
    """Whether ``pid`` is a running refgate process other than this one (``refgate serve``, its
    workers, ``refgate jobs``); an unrelated process that reused the pid does not count."""
    if pid == os.getpid():
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"refgate" in cmdline or b"gateway" in cmdline


def run(settings: Settings, *, host: str, port: int, workers: int, demo: bool) -> None:
    # Numeric libraries must not start a thread pool per worker (it collapses throughput).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # Links printed and minted must point at where this server listens, unless configured.
    if not os.environ.get("REFGATE_PUBLIC_URL"):
        os.environ["REFGATE_PUBLIC_URL"] = default_public_url(host, port)
    # Metrics of every worker, added up at /metrics; set before anything imports
    # prometheus-client. Counters start from zero with each server (the files are cleared).
    prepare_metrics_dir(settings.data_dir)
    embedded = EmbeddedRedis(settings.data_dir) if settings.embedded_store else None
    watch = None
    if embedded is not None:
        embedded.ensure_running()
        log.info("embedded store: %s (data dir %s)", embedded.socket_path, settings.data_dir)
        watch = EmbeddedStoreWatch(embedded)
    jobs = None
    if serve_starts_jobs_process():
        # Workers build their apps without the jobs thread; one process of its own runs them.
        os.environ[WORKERS_ENV] = "0"
        jobs = JobsProcess()
    # gunicorn forks its workers inside run() below, and a worker leaves by SystemExit, which
    # unwinds this same stack in the worker: only the serving process may stop what it started
    # (a worker that did stopped the jobs process and then waited on it, as a child not its own,
    # until the master killed it: every shutdown took the whole graceful timeout).
    owner = os.getpid()
    try:
        if demo:
            _seed_demo()
        options = gunicorn_options(
            host, port, workers, settings.data_dir, worker_threads(settings.max_in_flight)
        )
        if jobs is not None:
            jobs.start()
        if watch is not None:
            watch.start()
        GatewayServer(options).run()
    finally:
        if os.getpid() == owner:
            if watch is not None:
                watch.stop()
            if jobs is not None:
                jobs.stop()
            if embedded is not None:
                embedded.stop()


def _seed_demo() -> None:
    from gateway import create_app
    from gateway.demo import seed
    from gateway.services import EXTENSION

    app = create_app()
    services = app.extensions[EXTENSION]
    try:
        print(seed(services, traffic=True).describe(), flush=True)
    finally:
        services.close()
