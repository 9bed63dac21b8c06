"""The ``refgate`` command line."""

from __future__ import annotations

import logging
import math
import os
import sys
import tempfile
from pathlib import Path

import click
from flask import Flask
from flask.cli import ScriptInfo, with_appcontext
from redis.exceptions import RedisClusterException, RedisError

from gateway.apikeys import Role
from gateway.campaigns import Campaign
from gateway.services import Services
from gateway.settings import Settings, SettingsError
from gateway.store.embedded import EmbeddedStoreError

log = logging.getLogger("refgate")


@click.group(help="refgate: signed share links, QR codes and a click gateway that scores fraud.")
def cli() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


#: The files `refgate simulate` writes in its --out directory.
OUTPUTS = ("clicks.jsonl", "labels.jsonl", "referrers.jsonl", "summary.json")


#: The most worker processes `refgate serve` runs (--workers' range).
MAX_WORKERS = 64


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity, and a container's CPU quota (cgroup v2
    ``cpu.max``, v1 ``cpu.cfs_quota_us``). ``os.cpu_count()`` is the host's: in a container
    limited to 2 CPUs on a 64-core host it said 64, for 128 workers sharing 2 CPUs."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


def _cgroup_cpu_quota() -> float | None:
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        v1_quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        v1_period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return v1_quota / v1_period if v1_quota > 0 and v1_period > 0 else None


def default_workers() -> int:
    # Within --workers' range: on a machine of more than 32 CPUs, 2 x CPUs was refused as a
    # bad --workers value that nobody had given, and the server (the container) did not start.
    return min(MAX_WORKERS, 2 * usable_cpus())


def main() -> None:
    from gateway import create_app

    try:
        cli.main(obj=ScriptInfo(create_app=create_app), prog_name="refgate")
    except SettingsError as exc:
        click.echo(f"refgate: configuration error: {exc}", err=True)
        sys.exit(2)
    except EmbeddedStoreError as exc:
        # Its message ends with the server's last log lines: what to fix (a damaged AOF...).
        click.echo(f"refgate: the embedded store could not start: {exc}", err=True)
        sys.exit(2)
    except (RedisError, RedisClusterException) as exc:
        # A command that needs the store and cannot reach it: one line, not a traceback.
        where = _redacted(os.environ.get("REDIS_URL", "")) or "the embedded store"
        click.echo(f"refgate: the store is unavailable ({where}): {exc}", err=True)
        sys.exit(2)


def _redacted(url: str) -> str:
    """``url`` without its password."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not sep or not at:
        return url
    user = credentials.partition(":")[0]
    return f"{scheme}://{user + ':***' if user else '***'}@{host}"


def register(app: Flask) -> None:
    """Make the commands available to ``app.test_cli_runner()`` as well."""
    for command in cli.commands.values():
        app.cli.add_command(command)


def _services() -> Services:
    from gateway.services import services

    return services()


# -- serve ---------------------------------------------------------------------------------


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    default=lambda: default_workers(),
    show_default="2 x usable CPUs, at most 64",
    type=click.IntRange(1, MAX_WORKERS),
    help="gunicorn worker processes (threaded; each admits REFGATE_MAX_IN_FLIGHT requests).",
)
@click.option("--demo", is_flag=True, help="Seed a demo campaign and print URLs to try.")
def serve(host: str, port: int, workers: int, demo: bool) -> None:
    """Run refgate with gunicorn (and its embedded store unless REDIS_URL is set)."""
    from gateway import default_data_dir, logs
    from gateway.server import run

    logs.use_log_format()  # from the first line: the settings' warnings and the store starting
    settings = Settings.from_env(default_data_dir=default_data_dir())
    run(settings, host=host, port=port, workers=workers, demo=demo)


@cli.command()
@click.option("--once", is_flag=True, help="Run the jobs that are due, once, and exit (cron).")
@click.option(
    "--period",
    default=5.0,
    show_default=True,
    type=click.FloatRange(0.1, 3600.0),
    help="Seconds between looks for jobs that are due.",
)
def jobs(once: bool, period: float) -> None:
    """Run the periodic jobs (flagger, tree watch, webhooks, platform watch, model refresh).

    `refgate serve` starts one such process itself; run one yourself when the jobs should run
    elsewhere (REFGATE_JOBS_IN_WORKERS=0 on the servers). Any number may run: each job holds a
    store lock while it is due."""
    from gateway.jobsprocess import JobsFailed, run

    try:
        ran = run(once=once, period=period)
    except JobsFailed as exc:
        if exc.ran:
            click.echo(f"ran: {', '.join(exc.ran)}")
        failed = "; ".join(f"{name} ({why})" for name, why in exc.failures.items())
        click.echo(f"refgate jobs: {len(exc.failures)} job(s) could not run: {failed}", err=True)
        sys.exit(1)
    if once:
        click.echo(f"ran: {', '.join(ran)}" if ran else "nothing was due")


# -- demo ----------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--traffic/--no-traffic",
    default=True,
    show_default=True,
    help="Play a simulated festival into the campaign (once: not when it has clicks already).",
)
@with_appcontext
def demo(traffic: bool) -> None:
    """Seed a demo campaign, an admin API key and a share link; print what to try."""
    from gateway.demo import seed

    click.echo(seed(_services(), traffic=traffic).describe())


# -- API keys ------------------------------------------------------------------------------


@cli.group()
def apikey() -> None:
    """Create, list and disable API keys."""


@apikey.command("create")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--name", required=True, help="Who or what uses the key, e.g. 'crm-sync'.")
@with_appcontext
def apikey_create(role: str, name: str) -> None:
    """Create a key; prints only the key (store it now: it is not shown again)."""
    try:
        plaintext, key = _services().api_keys.create(name, role)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--name") from None
    click.echo(f"created API key {key.id} ({key.role.value}, {key.name!r})", err=True)
    click.echo(plaintext)


@apikey.command("list")
@with_appcontext
def apikey_list() -> None:
    """List keys (ids and names; keys themselves are never stored)."""
    for key in _services().api_keys.list():
        state = "disabled" if key.disabled else "active"
        click.echo(f"{key.id}\t{key.role.value}\t{state}\t{key.name}")


@apikey.command("disable")
@click.argument("key_id")
@with_appcontext
def apikey_disable(key_id: str) -> None:
    """Disable a key by its id (see `refgate apikey list`)."""
    try:
        key = _services().api_keys.disable(key_id)
    except KeyError:
        raise click.ClickException(f"no API key with id {key_id!r}") from None
    click.echo(f"disabled {key.id} ({key.name})")


# -- flags ---------------------------------------------------------------------------------


def _campaigns_of_option(found: Services, slug: str | None) -> list[Campaign]:
    """The campaign ``--campaign`` names, or every campaign; a usage error for an unknown one."""
    from gateway.errors import ApiError

    try:
        return [found.campaigns.require(slug)] if slug is not None else found.campaigns.list()
    except ApiError:
        raise click.BadParameter(f"no campaign {slug!r}", param_hint="--campaign") from None


@cli.group()
def flags() -> None:
    """Maintain the review queue's flags."""


@flags.command("reindex")
@click.option("--campaign", "slug", default=None, help="Only this campaign (default: every one).")
@with_appcontext
def flags_reindex(slug: str | None) -> None:
    """Build the amount-at-stake index of campaigns created before it existed (their review
    queue sorts by amount from the ledger, slowly, until then); safe to run again and while
    refgate serves."""
    found = _services()
    campaigns = _campaigns_of_option(found, slug)
    for campaign in campaigns:
        count = found.flags.reindex(campaign.id)
        click.echo(f"{campaign.slug}: {count} flags indexed by amount at stake")


@cli.group()
def rewards() -> None:
    """Maintain the reward ledger's indexes."""


@rewards.command("reindex")
@click.option("--campaign", "slug", default=None, help="Only this campaign (default: every one).")
@with_appcontext
def rewards_reindex(slug: str | None) -> None:
    """Put every reward in the index of its status (what GET /rewards?status= reads). A campaign
    from before those indexes gets them at its first listing filtered by status; run this once
    every worker runs this version if older ones wrote rewards meanwhile. Safe to run again and
    while refgate serves."""
    found = _services()
    campaigns = _campaigns_of_option(found, slug)
    for campaign in campaigns:
        count = found.rewards.index_statuses(campaign.id, force=True)
        click.echo(f"{campaign.slug}: {count} rewards indexed by status")


@cli.group()
def people() -> None:
    """Maintain the people lookup's index."""


@people.command("reindex")
@with_appcontext
def people_reindex() -> None:
    """Index every campaign's sharers and participants by name, so a people lookup reads only
    the campaigns that know the name (a store from before that index reads every campaign
    until this has run once). Safe to run again and while refgate serves."""
    count = _services().people.reindex()
    click.echo(f"{count} (person, campaign) pairs added to the people index")


# -- simulate ------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--scale",
    default=200,
    show_default=True,
    type=click.IntRange(min=1),
    help="Honest seed sharers in the main campaign (~130 events each, attacks in proportion).",
)
@click.option(
    "--seed",
    default=1,
    show_default=True,
    # What summary.json (JSON integers, 64 bits) can hold.
    type=click.IntRange(-(2**63), 2**64 - 1),
    help="Same seed, same bytes.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for clicks.jsonl, labels.jsonl, referrers.jsonl and summary.json.",
)
@click.option("--force", is_flag=True, help="Write into a non-empty directory (replacing outputs).")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Report progress on stderr (default: on from scale 2000).",
)
def simulate(scale: int, seed: int, out: Path, force: bool, progress: bool | None) -> None:
    """Write a synthetic click log v1 with fraud labels (see README, "Simulated traffic")."""
    from gateway.simulate import simulate as run_simulation

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.BadParameter(
            f"cannot create {out}: {exc.strerror}", param_hint="--out"
        ) from None
    if any(out.iterdir()) and not force:
        raise click.BadParameter(
            f"{out} is not empty; choose an empty directory or pass --force", param_hint="--out"
        )
    try:
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise click.BadParameter(
            f"cannot write in {out}: {exc.strerror}", param_hint="--out"
        ) from None
    in_the_way = [name for name in OUTPUTS if (out / name).is_dir()]
    if in_the_way:
        raise click.BadParameter(
            f"{out / in_the_way[0]} is a directory, where an output file goes", param_hint="--out"
        )
    report = progress if progress is not None else scale >= 2000

    def echo(message: str) -> None:
        click.echo(f"refgate simulate: {message}", err=True)

    summary = run_simulation(out, scale=scale, seed=seed, progress=echo if report else None)
    fraud = summary["fraud"]
    click.echo(
        f"wrote {summary['events']:,} events ({summary['clicks']:,} clicks, "
        f"{summary['conversions']:,} conversions; {fraud['clicks'] + fraud['conversions']:,} "
        f"fraudulent) to {out}"
    )


def _register_more() -> None:
    from gateway import cli_scoring, cli_users

    cli_scoring.register(cli)
    cli_users.register(cli)


_register_more()
