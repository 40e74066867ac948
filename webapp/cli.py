"""The ``gmall-payment`` command: Flask's CLI (run, shell, routes) plus the shop's own commands."""

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from ..adapters.sql import demo
from ..adapters.sql.models import db
from .provider_cli import alipay_sandbox, notifications


@click.command("init-db")
@with_appcontext
def init_db():
    """Create the tables that do not exist yet (never drops anything)."""
    db.create_all()
    click.echo(f"database ready: {db.engine.url.render_as_string(hide_password=True)}")


@click.command("seed-demo")
@with_appcontext
def seed_demo():
    """Demo members, SKUs with stock, and orders awaiting payment with their stock locked."""
    created = demo.seed()
    for member in demo.MEMBERS:
        click.echo(f"member {member.username} / password {member.password}")
    click.echo(f"{created} new orders awaiting payment")


@click.command("providers")
@with_appcontext
def providers():
    """List the enabled payment providers and the plugins that offered them."""
    services = current_app.extensions["gmall"]
    for name, plugin in services.plugins.list_name_plugin():
        click.echo(f"plugin {name}: {getattr(plugin, '__name__', plugin)}")
    for provider in services.providers:
        click.echo(f"provider {provider.name}: {provider.title}")


def register(app):
    for command in (init_db, seed_demo, providers, notifications, alipay_sandbox):
        app.cli.add_command(command)


def _create_app():
    from .app import create_app  # the CLI module is imported by the factory itself

    return create_app()


main = FlaskGroup(create_app=_create_app, help="gmall-payment: the shop's payment and flash-sale service.")
