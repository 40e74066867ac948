"""Members' commands: a new password, which ends every session the member has."""

import click
from flask.cli import with_appcontext

from ..adapters.sql import members as member_store
from .context import sessions_ended


@click.group("members")
def members():
    """Shop members: their passwords and sessions."""


@members.command("set-password")
@click.argument("username")
@click.password_option(help="the new password (asked twice when not given)")
@with_appcontext
def set_password(username, password):
    """Give USERNAME a new password; every session they have ends (they sign in again)."""
    try:
        member = member_store.set_password(username, password)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    sessions_ended(member.id)
    click.echo(f"new password set for {username}; their sessions have ended")
