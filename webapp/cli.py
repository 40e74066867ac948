"""The ``gmall-payment`` command: Flask's CLI (run, shell, routes) plus the shop's own commands."""

import sys

import click
from dramatiq import cli as dramatiq_cli
from dramatiq.errors import ConnectionFailed
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from ..adapters.dramatiq.broker import ensure_reachable
from ..adapters.sql import demo
from ..adapters.sql.models import db
from ..core.fulfilment import ALL_STEPS
from ..seckill.service import GIVE_BACK
from .operator_cli import operator_token, payments
from .provider_cli import alipay_sandbox, notifications
from .seckill_cli import seckill

#: What ``dramatiq`` imports in each worker process (see webapp/worker.py).
WORKER_MODULE = "gmall_payment.webapp.worker"
#: dramatiq's exit code for "broker connection failed".
EXIT_BROKER_UNREACHABLE = dramatiq_cli.RET_CONNECT


@click.command("init-db")
@with_appcontext
def init_db():
    """Create the tables that do not exist yet (never drops anything)."""
    db.create_all()
    click.echo(f"database ready: {db.engine.url.render_as_string(hide_password=True)}")


@click.command("seed-demo")
@with_appcontext
def seed_demo():
    """Demo members, SKUs with stock, orders awaiting payment with their stock locked, an open flash sale."""
    created = demo.seed(current_app.extensions["gmall"].seckill)
    for member in demo.MEMBERS:
        click.echo(f"member {member.username} / password {member.password}")
    click.echo(f"{created} new orders awaiting payment; flash sale: gmall-payment seckill list")


@click.command("providers")
@with_appcontext
def providers():
    """List the enabled payment providers and the plugins that offered them."""
    services = current_app.extensions["gmall"]
    for name, plugin in services.plugins.list_name_plugin():
        click.echo(f"plugin {name}: {getattr(plugin, '__name__', plugin)}")
    for provider in services.providers:
        click.echo(f"provider {provider.name}: {provider.title}")


@click.command("worker", context_settings={"ignore_unknown_options": True, "help_option_names": []})
@click.argument("dramatiq_args", nargs=-1, type=click.UNPROCESSED)
@with_appcontext
def worker(dramatiq_args):
    """Run Dramatiq worker processes on GMALL_REDIS_URL.

    Extra arguments go to `dramatiq` (e.g. --processes 2 --threads 8; --help lists them).
    Exits with 3 when Redis is unreachable.
    """
    settings = current_app.extensions["gmall"].settings
    if not settings.redis_url:
        raise click.UsageError(
            "GMALL_REDIS_URL is not set: workers need Redis (e.g. redis://127.0.0.1:6379/0); "
            "the embedded default runs its worker inside `gmall-payment run`"
        )
    if "--help" not in dramatiq_args:
        try:
            ensure_reachable(settings.redis_url)
        except ConnectionFailed as error:
            click.echo(f"gmall-payment worker: {error}", err=True)
            sys.exit(EXIT_BROKER_UNREACHABLE)
    args = dramatiq_cli.make_argument_parser().parse_args([WORKER_MODULE, *dramatiq_args])
    sys.exit(dramatiq_cli.main(args))


@click.command("replay")
@click.argument("step", type=click.Choice([*ALL_STEPS, GIVE_BACK]))
@click.argument("order_sn")
@with_appcontext
def replay(step, order_sn):
    """Run one fulfilment step of an order again, now (after it was dead-lettered).

    Safe whatever its state: a step already in effect is only traced as skipped.
    """
    services = current_app.extensions["gmall"]
    try:
        changed = services.steps.run(step, order_sn)
    except Exception as error:
        click.echo(f"{step}({order_sn}) failed again: {type(error).__name__}: {error}", err=True)
        sys.exit(1)
    finally:
        services.bus.drain()  # what the step published runs here before the command exits
    click.echo(f"{step}({order_sn}): {'done' if changed else 'skipped, it was already in effect'}")


@click.command("reconcile")
@click.option("--dry-run", is_flag=True, help="only ask and say what the providers answer; change nothing")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="ask about this many payments at most")
@with_appcontext
def reconcile(dry_run, limit):
    """Ask the providers about payments still unpaid whose next query is due (what the
    workers do every RECONCILE_SECONDS), and apply their answers as notifications."""
    services = current_app.extensions["gmall"]
    reconciliation = services.reconciliation
    try:
        results = reconciliation.preview(limit) if dry_run else reconciliation.run(limit)
    finally:
        services.bus.drain()  # what the answers published runs here before the command exits
    for result in results:
        p = result.payment
        click.echo(f"#{p.id} {p.payment_type} {p.out_trade_no} (order {p.order_sn}): "
                   f"{'answers ' if dry_run else ''}{result.outcome}" + (f" - {result.detail}" if result.detail else ""))
    verb = "would apply nothing (dry run)" if dry_run else "done"
    click.echo(f"{len(results)} payment(s) asked about; {verb}")


@click.command("expire")
@click.option("--dry-run", is_flag=True, help="only list the orders due; change nothing")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="this many orders at most")
@with_appcontext
def expire(dry_run, limit):
    """Close the orders unpaid for longer than ORDER_PAY_TIMEOUT (what the workers do every
    EXPIRY_SECONDS): their stock locks are released and their providers' trades closed."""
    services = current_app.extensions["gmall"]
    try:
        results = services.expiry.run(limit, dry_run=dry_run)
    finally:
        services.bus.drain()  # closing the trades runs here before the command exits
    for result in results:
        click.echo(f"{result.order_sn}: {result.outcome}" + (f" - {result.detail}" if result.detail else ""))
    click.echo(f"{len(results)} order(s) past ORDER_PAY_TIMEOUT ({services.expiry.timeout})"
               + ("; dry run, nothing changed" if dry_run else ""))


def register(app):
    for command in (init_db, seed_demo, providers, notifications, alipay_sandbox, worker, replay, reconcile,
                    expire, payments, operator_token, seckill):
        app.cli.add_command(command)


def _create_app():
    from .app import create_app  # the CLI module is imported by the factory itself

    return create_app()


main = FlaskGroup(create_app=_create_app, help="gmall-payment: the shop's payment and flash-sale service.")
