"""Instructions a click costs, counted by callgrind: a measure that does not drift with the machine.

Throughput on a shared two-core machine moves by 15-30% between runs, and a change worth a few
per cent disappears in it (bench/click_path.py measures both apps in the same run, and still the
machine's speed moved by more within the hour). Callgrind counts the instructions a process runs,
the same count for the same code and input whatever else the machine does. This script counts,
per request, for the bare Flask 302 (bench/bare_app.py), the same with one ``INCR``, and the
gateway's click path:

* the worker: the Python process answering the requests through its WSGI app, the client side
  of the store round trip included (no HTTP server: gunicorn's parsing is the same for all three
  and is left out, as is everything the kernel does: system calls, context switches);
* the store: the embedded store's redis-server (AOF on, as refgate runs it), started under
  callgrind for the run.

The clicks are those of bench/click_path.py: 2,000 sharers' links picked at random, a browser
without cookies, one of 4,096 client addresses. It prints instructions per request for each
part, and what the click path costs over the bare 302 with one ``INCR`` (the floor of any design
that records clicks in the store): the figure to compare before and after a change.

    .venv/bin/python bench/instructions.py [--requests 3000]    # needs valgrind; ~5 minutes
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BROWSER_UA, ROOT, Environment, free_port, seed, wait_for_redis

APPS = {
    "bare": "bench.bare_app:app",
    "bare+store": "bench.bare_app:store_app",
    "gateway": "gateway:create_app()",
}
LINKS = 2000
ADDRESSES = 4096
WARM_UP = 600


def callgrind(out: Path) -> list[str]:
    return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-line=no"]


def counted(path: Path) -> int:
    """The instructions a callgrind dump file counted."""
    for line in path.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def control(action: str, pid: int) -> None:
    """``-z`` zeroes a process's counts, ``-d`` writes what it counted since."""
    subprocess.run(["callgrind_control", action, str(pid)], capture_output=True, check=True)


def app_env(data_dir: Path, redis_url: str) -> dict[str, str]:
    return {
        **Environment(data_dir, redis_url).env(),
        "REFGATE_JOBS_IN_WORKERS": "0",
        # The same dict layouts in every run: string hashing is randomised per process
        # otherwise, and moves the counts by a few tenths of a per cent.
        "PYTHONHASHSEED": "0",
    }


# -- the child: one app, under callgrind --------------------------------------------------------


def child(app_name: str, requests: int, paths_file: Path, store_pid: int) -> None:
    """Answer ``requests`` requests through ``app_name``'s WSGI app; the store's counts and this
    process's are zeroed before and written after (each process writes its own file)."""
    import importlib

    module, _, attribute = APPS[app_name].partition(":")
    if attribute.endswith("()"):
        app: Any = getattr(importlib.import_module(module), attribute[:-2])()
        services = app.extensions["refgate"]
        services.scheduler.stop()
        # Under callgrind a click takes milliseconds: the recorder's flusher, which writes a
        # quiet worker's events every 50 ms, would write nearly every click's event on its own
        # instead of letting the next clicks carry them as they do under load.
        services.recorder._flush_after = 3600.0
    else:
        app = getattr(importlib.import_module(module), attribute)
    paths = paths_file.read_text().split()
    rng = random.Random(7)
    addresses = [
        f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        for _ in range(ADDRESSES)
    ]
    from werkzeug.test import EnvironBuilder

    base = EnvironBuilder(
        path="/s/x",
        headers=[("User-Agent", BROWSER_UA), ("Accept-Language", "zh-CN,zh;q=0.9")],
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    ).get_environ()
    environs = []
    for _ in range(WARM_UP + requests):
        environ = dict(base)
        environ["PATH_INFO"] = rng.choice(paths)
        environ["HTTP_X_FORWARDED_FOR"] = rng.choice(addresses)
        environs.append(environ)
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        statuses.append(status)
        return lambda data: None

    def answer(environ: dict[str, Any]) -> None:
        body = app(environ, start_response)
        b"".join(body)
        close = getattr(body, "close", None)
        if close is not None:
            close()

    for environ in environs[:WARM_UP]:
        answer(environ)
    own = os.getpid()
    control("-z", store_pid)
    control("-z", own)
    for environ in environs[WARM_UP:]:
        answer(environ)
    control("-d", own)
    control("-d", store_pid)
    redirects = sum(1 for status in statuses[WARM_UP:] if status.startswith("302"))
    if redirects != requests:
        raise SystemExit(f"{app_name}: {requests - redirects} of {requests} were not redirects")
    os._exit(0)  # nothing more to count (the app's threads, interpreter teardown)


# -- the parent ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="copy the callgrind dumps (worker and store, per app) into DIR, for "
        "callgrind_annotate: where a request's instructions go, by function",
    )
    parser.add_argument("--child", choices=list(APPS), help=argparse.SUPPRESS)
    parser.add_argument("--paths", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--store-pid", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.requests < 1:
        parser.error("--requests must be 1 or more")
    if args.child:
        child(args.child, args.requests, args.paths, args.store_pid)
        return
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        parser.error("needs valgrind (apt-get install valgrind)")

    from gateway.store.embedded import SERVER_CONFIG, redis_server_executable

    with tempfile.TemporaryDirectory(prefix="refgate-instructions-") as tmp:
        work = Path(tmp)
        port = free_port()
        config = {**SERVER_CONFIG, "daemonize": "no", "port": str(port), "dir": str(work)}
        config.pop("unixsocketperm")
        options = [part for name, value in config.items() for part in (f"--{name}", value)]
        options = [option if option != '""' else "" for option in options]
        store = subprocess.Popen(
            [*callgrind(work / "store.%p"), redis_server_executable(), *options],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        redis_url = f"redis://127.0.0.1:{port}/0"
        try:
            try:
                wait_for_redis(redis_url, store, 60, "redis-server under valgrind")
            except RuntimeError as exc:
                raise SystemExit(str(exc)) from None
            env = app_env(work / "data", redis_url)
            os.environ.update(
                {k: v for k, v in env.items() if k.startswith(("REFGATE_", "REDIS_"))}
            )
            paths = seed(Environment(work / "data", redis_url), links=LINKS)
            paths_file = work / "paths.txt"
            paths_file.write_text("\n".join(paths))
            results: dict[str, tuple[float, float]] = {}
            for dump, name in enumerate(APPS, start=1):
                print(f"{name}: {args.requests} requests under callgrind ...", flush=True)
                run = subprocess.run(
                    [
                        *callgrind(work / f"{name}.%p"),
                        sys.executable, str(Path(__file__).resolve()),
                        "--child", name, "--requests", str(args.requests),
                        "--paths", str(paths_file), "--store-pid", str(store.pid),
                    ],
                    env=env, cwd=str(ROOT), capture_output=True, text=True,
                )  # fmt: skip
                if run.returncode != 0:
                    raise SystemExit(f"{name} failed:\n{run.stderr[-3000:]}")
                worker_file = next(work.glob(f"{name}.*.1"))
                store_file = work / f"store.{store.pid}.{dump}"
                results[name] = (
                    counted(worker_file) / args.requests,
                    counted(store_file) / args.requests,
                )
                if args.keep is not None:
                    args.keep.mkdir(parents=True, exist_ok=True)
                    shutil.copy(worker_file, args.keep / f"{name}.worker.callgrind")
                    shutil.copy(store_file, args.keep / f"{name}.store.callgrind")
        finally:
            store.terminate()
            store.wait(timeout=60)

    print(f"\ninstructions per request (callgrind, user space), {args.requests} requests each")
    print(f"  {'app':12s} {'worker':>9s} {'store':>9s} {'total':>9s}")
    for name, (worker, store_part) in results.items():
        print(f"  {name:12s} {worker:9.0f} {store_part:9.0f} {worker + store_part:9.0f}")
    floor = sum(results["bare+store"])
    gateway = sum(results["gateway"])
    worker_more = results["gateway"][0] - results["bare+store"][0]
    store_more = results["gateway"][1] - results["bare+store"][1]
    print(
        f"  the click path over the bare 302 with one INCR: {gateway - floor:,.0f} "
        f"({worker_more:,.0f} in the worker, {store_more:,.0f} in the store); "
        f"gateway / (bare + INCR) {gateway / floor:.2f}"
    )
    print(
        "  (no HTTP server and no kernel work counted: compare these between versions, not with "
        "throughput)"
    )


if __name__ == "__main__":
    main()
