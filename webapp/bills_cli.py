"""``gmall-payment bills``: fetch a provider's daily bill and reconcile it; the runs so far."""

from datetime import date, datetime

import click
from flask import current_app
from flask.cli import with_appcontext

from ..core.bills import FAILED, BillRun
from ..core.errors import NotSupported, UnknownProvider
from .formatting import shop_time


@click.group("bills")
def bills():
    """The providers' daily bills (Alipay's 业务明细) against the shop's payments and refunds."""


def _day(_context, _parameter, value: str) -> date:
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a day written YYYY-MM-DD") from None


def describe(run: BillRun) -> str:
    """A run in a line: its day, outcome and counts."""
    if run.outcome == FAILED:
        return (
            f"#{run.id} {run.provider} {run.bill_date}: failed at {shop_time(run.started_at)} - {run.detail}"
        )
    return (
        f"#{run.id} {run.provider} {run.bill_date}: {run.trade_lines} trade and {run.refund_lines} refund "
        f"line(s), {run.matched} matched, {run.repaired} repaired, {run.refunds_recorded} refund(s) recorded, "
        f"{len(run.differences)} difference(s) (run {shop_time(run.started_at)})"
    )


@bills.command("fetch")
@click.option("--date", "day", required=True, callback=_day, help="the provider's day, YYYY-MM-DD")
@click.option("--provider", default="alipay", show_default=True, help="the provider whose bill to fetch")
@with_appcontext
def fetch(day, provider):
    """Fetch the provider's bill of the day and reconcile every line with our payments and
    refunds (what the workers do each morning with BILLS_FETCH); again changes nothing more."""
    services = current_app.extensions["gmall"]
    try:
        run = services.bills.run(provider, day)
    except (NotSupported, UnknownProvider) as error:
        raise click.ClickException(str(error)) from None
    finally:
        services.bus.drain()  # what a repaired payment published runs here before the command exits
    click.echo(describe(run))
    for difference in run.differences:
        click.echo(f"  {difference}")
    if run.outcome == FAILED:
        raise SystemExit(1)


@bills.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@with_appcontext
def runs(limit):
    """The latest runs, newest first."""
    found = current_app.extensions["gmall"].bills.runs(limit)
    for run in found:
        click.echo(describe(run))
    if not found:
        click.echo("no bill run yet: gmall-payment bills fetch --date YYYY-MM-DD")
