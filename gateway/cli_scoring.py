"""``refgate replay``, ``export``, ``train``, ``model``: backtesting, training, model versions."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext

from detectors.model import ExportedModel, ModelError


def _services() -> Any:
    from gateway.services import services

    return services()


def register(cli: click.Group) -> None:
    cli.add_command(replay_command)
    cli.add_command(export_command)
    cli.add_command(train_command)
    cli.add_command(model_group)


# -- replay ------------------------------------------------------------------------------------


@click.command("replay")
@click.argument("log", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output directory.",
)
@click.option(
    "--model",
    "model_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A model JSON to score with (default: rules only).",
)
@click.option("--features", is_flag=True, help="Also write each click's feature vector.")
def replay_command(log: Path, out: Path, model_file: Path | None, features: bool) -> None:
    """Replay a click log (click log v1, sorted by ts) through the engine on a fresh store."""
    from gateway.replay import ReplayError, replay

    model_json = None
    if model_file is not None:
        model_json = model_file.read_text()
        try:
            ExportedModel.from_json(model_json)
        except ModelError as exc:
            raise click.BadParameter(str(exc), param_hint="--model") from None
    if out.exists() and any(out.iterdir()):
        raise click.BadParameter(f"{out} is not empty", param_hint="--out")
    size = log.stat().st_size
    show = size > 2_000_000 and sys.stderr.isatty()
    with click.progressbar(length=size, label="replaying", file=sys.stderr, hidden=not show) as bar:
        position = [0]

        def progress(_line: int) -> None:
            position[0] += 1
            if position[0] % 2000 == 0:
                bar.update(0)

        # Into a directory beside --out, renamed into place once whole: a replay that fails
        # or is interrupted leaves no partial results that look real, nor blocks its rerun.
        partial = out.with_name(f".{out.name}.partial-{os.getpid()}")
        try:
            summary = replay(
                log,
                partial,
                model_json=model_json,
                with_features=features,
                progress=progress if show else None,
            )
            if out.exists():
                out.rmdir()  # empty, checked above
            partial.rename(out)
        except ReplayError as exc:
            raise click.ClickException(f"{log}: {exc}") from None
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    for name, value in summary.public().items():
        click.echo(f"{name}: {value}")


# -- export ------------------------------------------------------------------------------------


#: The latest --since taken: the end of year 9999 (stream ids are milliseconds).
LATEST = 253402300799.0


def _since(value: str | None) -> float:
    if value is None:
        return 0.0
    try:
        since = float(value)
    except ValueError:
        try:
            since = datetime.fromisoformat(value).timestamp()
        except ValueError:
            raise click.BadParameter(
                "unix seconds or an ISO 8601 time", param_hint="--since"
            ) from None
    if not 0.0 <= since <= LATEST:  # NaN included
        raise click.BadParameter("a time from 1970 to 9999", param_hint="--since")
    return since


@click.command("export")
@click.option("--campaign", "slug", required=True)
@click.option(
    "--since", default=None, help="Only events at or after this time (unix seconds or ISO 8601)."
)
@click.argument("out", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@with_appcontext
def export_command(slug: str, since: str | None, out: Path) -> None:
    """Write a campaign's recorded clicks and conversions as click log v1 (IP hashes, no IPs)."""
    from gateway.errors import ApiError
    from gateway.exporter import export_campaign

    start = _since(since)  # every check before the output is touched
    found = _services()
    try:
        campaign = found.campaigns.require(slug)
    except ApiError as exc:
        raise click.BadParameter(exc.message, param_hint="--campaign") from None
    if str(out) == "-":
        written = export_campaign(found.store.main, campaign, start, sys.stdout.buffer)
        click.echo(f"wrote {written} events", err=True)
        return
    problem = _unwritable(out)
    if problem is not None:
        raise click.BadParameter(problem, param_hint="OUT")
    # Written beside the target and renamed into place: an error or a Ctrl-C part way leaves
    # an existing file as it was, never a truncated log that looks whole.
    partial = out.with_name(f".{out.name}.partial")
    try:
        with open(partial, "wb") as fh:
            written = export_campaign(found.store.main, campaign, start, fh)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    click.echo(f"wrote {written} events to {out}", err=True)


# -- train -------------------------------------------------------------------------------------


@click.command("train")
@click.argument(
    "simulations", nargs=-1, type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.option(
    "--decisions", is_flag=True, help="Also learn from the risk team's decisions in the store."
)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the model JSON here.",
)
@click.option(
    "--activate", is_flag=True, help="Make the new version the one every worker scores with."
)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--force",
    is_flag=True,
    help="Save (and with --activate, activate) a model that fails the out-of-fold quality check.",
)
@with_appcontext
def train_command(
    simulations: tuple[Path, ...],
    decisions: bool,
    out: Path | None,
    activate: bool,
    seed: int,
    force: bool,
) -> None:
    """Train the click model from `refgate simulate` directories and/or review decisions."""
    from detectors.training import LabelledClicks, train
    from gateway.training_data import LabelError, from_decisions, from_simulation

    if not simulations and not decisions:
        raise click.UsageError("give simulation directories and/or --decisions")
    if out is not None:
        # Checked before minutes of training, not after (the model would be saved, not written).
        problem = _unwritable(out)
        if problem is not None:
            raise click.BadParameter(problem, param_hint="--out")
    data = LabelledClicks([], [], [], [])
    for directory in simulations:
        click.echo(f"replaying {directory} for features...", err=True)
        try:
            data.extend(from_simulation(directory))
        except (FileNotFoundError, LabelError) as exc:
            raise click.BadParameter(str(exc), param_hint="SIMULATIONS") from None
    found = _services()
    if decisions:
        data.extend(from_decisions(found.store.main, list(found.campaigns.iter_ids())))
    try:
        report = train(data, seed=seed)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    for line in report.lines():
        click.echo(line)
    unfit = report.unfit()
    if unfit is not None:
        if not force:
            raise click.ClickException(
                f"not saved: {unfit}. Train on more data (more referrers, more kinds of "
                "attack), or save it anyway with --force."
            )
        click.echo(f"warning: {unfit}; saved because of --force", err=True)
    try:
        found.models.save(report.model)
    except ModelError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"saved model version {report.model.version} (sha256 {report.model.sha256[:12]})")
    if out is not None:
        out.write_text(report.model.to_json())
    if activate:
        found.models.activate(report.model.version)
        click.echo(f"activated {report.model.version}")


# -- model versions ----------------------------------------------------------------------------


@click.group("model")
def model_group() -> None:
    """List, show, import and activate model versions."""


@model_group.command("list")
@with_appcontext
def model_list() -> None:
    for entry in _services().models.list():
        marker = "*" if entry.get("active") else " "
        metrics = entry.get("metrics", {})
        ap = metrics.get("average_precision")
        trained = time.strftime("%Y-%m-%d %H:%M", time.gmtime(entry.get("trained_at", 0)))
        detail = entry.get("error") or (f"AP {ap:.3f}" if isinstance(ap, float) else "")
        click.echo(f"{marker} {entry['version']}\t{trained}\t{detail}")


@model_group.command("show")
@click.argument("version")
@with_appcontext
def model_show(version: str) -> None:
    try:
        model = _services().models.get(version)
    except KeyError:
        raise click.ClickException(f"no model version {version!r}") from None
    click.echo(json.dumps({**model.body(), "sha256": model.sha256}, indent=2))


@model_group.command("activate")
@click.argument("version")
@with_appcontext
def model_activate(version: str) -> None:
    try:
        _services().models.activate(version)
    except KeyError:
        raise click.ClickException(f"no model version {version!r}") from None
    except ModelError as exc:
        raise click.ClickException(f"model {version} cannot be served: {exc}") from None
    click.echo(f"activated {version}; workers pick it up within 10 seconds")


@model_group.command("deactivate")
@with_appcontext
def model_deactivate() -> None:
    """Score with the rules alone."""
    _services().models.deactivate()
    click.echo("no active model: scoring with the rules alone")


@model_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def model_import(path: Path) -> None:
    try:
        model = ExportedModel.from_json(path.read_bytes())
    except ModelError as exc:
        raise click.ClickException(f"{path}: {exc}") from None
    try:
        _services().models.save(model)
    except ModelError as exc:
        raise click.ClickException(f"{path}: {exc}") from None
    click.echo(f"imported {model.version}")


def _unwritable(path: Path) -> str | None:
    """Why a file cannot be written at ``path``, or None when it can (it is not created)."""
    if path.is_dir():
        return f"{path} is a directory"
    parent = path.parent
    if not parent.is_dir():
        return f"{parent} is not a directory"
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return f"{path} cannot be written"
    return None
