"""The ``gmall-payment`` command: Flask's CLI (run, shell, routes) plus the shop's own commands."""

import os
import sys

import click
from dramatiq import cli as dramatiq_cli
from dramatiq.errors import ConnectionFailed
from flask import Config, current_app
from flask.cli import FlaskGroup, with_appcontext
from flask_migrate import Migrate

from ..adapters.bootstrap import BUILTIN_PROVIDERS, provider_registry
from ..adapters.config import LifecycleSettings, SeckillSettings
from ..adapters.dramatiq.broker import BrokerSettings, ensure_reachable
from ..adapters.sql import demo, schema
from ..adapters.sql.models import db
from ..core.errors import OrderNotFound
from ..core.events import ALL_STEPS
from ..ports.plugins import make_plugin_manager
from . import production, settings
from .bills_cli import bills
from .members_cli import members
from .operator_cli import operator_token, payments
from .provider_cli import alipay_sandbox, notifications
from .seckill_cli import seckill
from .status_cli import status

#: What ``dramatiq`` imports in each worker process (see webapp/worker.py).
WORKER_MODULE = "gmall_payment.webapp.worker"
#: dramatiq's exit code for "broker connection failed".
EXIT_BROKER_UNREACHABLE = dramatiq_cli.RET_CONNECT


#: Flask-Migrate's ``gmall-payment db ...`` (upgrade, current, history, revision --autogenerate)
#: on the shop's migrations, with the app's engine.
migrate = Migrate(directory=str(schema.MIGRATIONS))


@migrate.configure
def _on_the_app_engine(config):
    config.attributes["engine"] = db.engine
    config.stdout = sys.stdout  # Alembic's default is the sys.stdout of when it was imported
    return config


@click.command("init-db")
@with_appcontext
def init_db():
    """Upgrade the database to the newest schema revision (an empty one gets every table).

    A database made by an older init-db (no alembic_version) whose tables are the models' or
    the baseline's (less perhaps whole tables, made first) is stamped so, then upgraded; any
    other, or one at a revision unknown here, is refused unchanged.
    """
    url = db.engine.url.render_as_string(hide_password=True)
    try:
        with db.engine.begin() as connection:
            result = schema.upgrade(connection)
    except schema.UnknownSchema as error:
        raise click.ClickException(f"{url}: {error}") from None
    click.echo(f"{url}: {result.found}")
    for step in result.applied:
        click.echo(f"  upgraded to {step}")
    click.echo("database ready: at the newest revision (gmall-payment db current)")


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
    for name, plugin in services.plugin_manager.list_name_plugin():
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
    settings = current_app.extensions["gmall"].broker_settings
    if not settings.redis_url:
        raise click.UsageError(
            "GMALL_REDIS_URL is not set: workers need Redis (e.g. redis://127.0.0.1:6379/0); "
            "the embedded default runs its worker inside `gmall-payment run`"
        )
    if "--help" not in dramatiq_args:
        try:
            ensure_reachable(settings)
        except ConnectionFailed as error:
            click.echo(f"gmall-payment worker: {error}", err=True)
            sys.exit(EXIT_BROKER_UNREACHABLE)
    if current_app.config["METRICS"] and "--use-spawn" not in dramatiq_args:
        # This process imported prometheus-client already; spawned workers import it afresh,
        # after the worker module names the metrics' directory (webapp/worker.py).
        dramatiq_args = ("--use-spawn", *dramatiq_args)
    args = dramatiq_cli.make_argument_parser().parse_args([WORKER_MODULE, *dramatiq_args])
    sys.exit(dramatiq_cli.main(args))


@click.command("replay")
@click.argument("step", type=click.Choice(ALL_STEPS))
@click.argument("order_sn")
@with_appcontext
def replay(step, order_sn):
    """Run one fulfilment step of an order again, now (after it was dead-lettered).

    Safe whatever its state: a step already in effect is only traced as skipped.
    """
    services = current_app.extensions["gmall"]
    try:
        changed = services.steps.run(step, order_sn)
    except OrderNotFound as error:
        click.echo(f"{step}({order_sn}): no order {order_sn} ({error}): check the order number", err=True)
        sys.exit(1)
    except Exception as error:
        click.echo(f"{step}({order_sn}) failed: {type(error).__name__}: {error}", err=True)
        sys.exit(1)
    finally:
        services.bus.drain()  # what the step published runs here before the command exits
    click.echo(f"{step}({order_sn}): {'done' if changed else 'skipped, it was already in effect'}")


@click.command("reconcile")
@click.option("--dry-run", is_flag=True, help="only ask and say what the providers answer; change nothing")
@click.option(
    "--limit", type=click.IntRange(min=1), default=None, help="ask about this many payments at most"
)
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
        click.echo(
            f"#{p.id} {p.payment_type} {p.out_trade_no} (order {p.order_sn}): "
            f"{'answers ' if dry_run else ''}{result.outcome}"
            + (f" - {result.detail}" if result.detail else "")
        )
    verb = "would apply nothing (dry run)" if dry_run else "done"
    click.echo(f"{len(results)} payment(s) asked about; {verb}")


@click.command("expire")
@click.option("--dry-run", is_flag=True, help="only list the orders due; change nothing")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="this many orders at most")
@with_appcontext
def expire(dry_run, limit):
    """Close the orders unpaid for longer than ORDER_PAY_TIMEOUT_SECONDS (what the workers do every
    EXPIRY_SECONDS): their stock locks are released and their providers' trades closed."""
    services = current_app.extensions["gmall"]
    try:
        results = services.order_expiry.run(limit, dry_run=dry_run)
    finally:
        services.bus.drain()  # closing the trades runs here before the command exits
    for result in results:
        click.echo(f"{result.order_sn}: {result.outcome}" + (f" - {result.detail}" if result.detail else ""))
    click.echo(
        f"{len(results)} order(s) past ORDER_PAY_TIMEOUT_SECONDS ({services.order_expiry.timeout})"
        + ("; dry run, nothing changed" if dry_run else "")
    )


@click.command("check")
def check():
    """Check the current settings as a PRODUCTION start would: print every finding; exit 1
    when one would stop it. Needs no database and works where the shop would refuse to start."""
    config, findings, providers = Config(instance_path()), [], []
    try:
        settings.read(config, config.root_path)
        for reader in (
            BrokerSettings,
            LifecycleSettings,
            SeckillSettings,
        ):  # their numbers, as a start checks them
            reader.from_settings(config)
        if config["PRODUCTION"]:
            providers = provider_registry(config, make_plugin_manager(BUILTIN_PROVIDERS))
    except (ValueError, OSError) as error:  # what stops any start (a bad flag, a key that cannot be read)
        findings.append(production.Finding("settings", str(error), fatal=True))
    findings += production.check(config, providers)
    for finding in findings:
        click.echo(finding)
    fatal = sum(finding.fatal for finding in findings)
    if fatal:
        click.echo(f"{fatal} fatal finding(s): a production start would refuse", err=True)
        sys.exit(1)
    click.echo(f"ready for production ({len(findings)} warning(s))")


def register(app):
    migrate.init_app(app, db)
    for command in (
        init_db,
        seed_demo,
        providers,
        notifications,
        alipay_sandbox,
        worker,
        replay,
        reconcile,
        expire,
        bills,
        payments,
        operator_token,
        seckill,
        status,
        members,
    ):
        app.cli.add_command(command)


def _create_app():
    from .app import create_app  # the CLI module is imported by the factory itself

    return create_app()


def instance_path() -> str:
    """The instance folder as ``create_app`` finds it."""
    return os.path.abspath(os.environ.get("GMALL_INSTANCE_PATH") or "instance")


main = FlaskGroup(create_app=_create_app, help="gmall-payment: the shop's payment and flash-sale service.")
main.add_command(check)  # the group's own: it runs without building the app
