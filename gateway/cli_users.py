"""``refgate user``: staff accounts of the console (gateway.users)."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from gateway.services import Services
from gateway.users import STAFF_ROLES, UserError


def _services() -> Services:
    from gateway.services import services

    return services()


def _password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise click.UsageError("--password-stdin: nothing on standard input")
        return line.rstrip("\r\n")
    password: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


def _audit(action: str, target: str, detail: dict[str, str] | None = None) -> None:
    _services().audit.record("cli", action, target, detail=detail)


@click.group()
def user() -> None:
    """Add, list, disable and reset staff accounts of the console."""


@user.command("add")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(STAFF_ROLES))
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@with_appcontext
def user_add(email: str, role: str, password_stdin: bool) -> None:
    """Create an account (the password is asked for, or read with --password-stdin)."""
    try:
        created = _services().users.add(email, role, _password(password_stdin))
    except UserError as exc:
        raise click.BadParameter(exc.message, param_hint=exc.field) from None
    _audit("user.add", created.email, {"role": role})
    click.echo(f"added {created.email} ({created.role})")


@user.command("list")
@with_appcontext
def user_list() -> None:
    """List accounts: email, role, state."""
    for found in _services().users.list():
        state = "disabled" if found.disabled else "active"
        click.echo(f"{found.email}\t{found.role}\t{state}")


@user.command("disable")
@click.argument("email")
@click.option("--enable", is_flag=True, help="Enable the account again instead.")
@with_appcontext
def user_disable(email: str, enable: bool) -> None:
    """Disable an account (its sessions end at once)."""
    try:
        changed = _services().users.set_disabled(email, not enable)
    except KeyError:
        raise click.ClickException(f"no account {email!r}") from None
    _audit("user.enable" if enable else "user.disable", changed.email)
    click.echo(f"{'enabled' if enable else 'disabled'} {changed.email}")


@user.command("reset")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@with_appcontext
def user_reset(email: str, password_stdin: bool) -> None:
    """Set a new password (its sessions end at once)."""
    users = _services().users
    if users.get(email) is None:
        raise click.ClickException(f"no account {email!r}")
    try:
        changed = users.reset_password(email, _password(password_stdin))
    except UserError as exc:
        raise click.BadParameter(exc.message, param_hint=exc.field) from None
    _audit("user.reset", changed.email)
    click.echo(f"password reset for {changed.email}")


def register(cli: click.Group) -> None:
    cli.add_command(user)
