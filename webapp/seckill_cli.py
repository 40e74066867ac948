"""Operators' flash-sale commands: create a sale, list sales, preheat one."""

from datetime import datetime, timedelta

import click
from flask import current_app
from flask.cli import with_appcontext

from ..core.errors import DomainError
from ..core.money import to_amount
from ..core.seckill import Sale


def _services():
    return current_app.extensions["gmall"]


@click.group("seckill")
def seckill():
    """Flash sales (秒杀): create, list, preheat."""


@seckill.command("create")
@click.option("--sku", "sku_id", type=int, required=True, help="the SKU sold (it needs a stock row)")
@click.option("--title", required=True)
@click.option("--price", required=True, help="yuan, e.g. 1999.00")
@click.option("--units", type=int, required=True, help="units on sale (one per member)")
@click.option("--start", type=click.DateTime(), required=True, help="e.g. 2024-11-11T20:00:00 (server time)")
@click.option("--end", type=click.DateTime(), required=True)
@with_appcontext
def create(sku_id, title, price, units, start, end):
    """Create a sale; it is preheated automatically shortly before its start."""
    try:
        sale = _services().seckill.create_sale(Sale(sku_id, title, to_amount(price), units, start, end))
    except DomainError as error:
        raise click.UsageError(str(error)) from None
    click.echo(_describe(sale))


@seckill.command("list")
@click.option(
    "--days", type=float, default=7, show_default=True, help="sales open now or starting within this"
)
@with_appcontext
def list_sales(days):
    """Sales open now or starting soon, with the units left in the gate ('-': not loaded yet)."""
    services = _services()
    sales = services.seckill.showcase(timedelta(days=days))
    for sale, units in sales:
        if services.bus.in_process:  # this process's gate is not the one that counts
            left = "left: counted in the web server's process (the embedded gate, no GMALL_REDIS_URL): see /seckill"
        else:
            left = (
                f"left {units}"
                if units is not None
                else "left - (not loaded into Redis yet: seckill preheat)"
            )
        click.echo(f"{_describe(sale)}, {left}")
    if not sales:
        click.echo(f"no sale open or starting within {days:g} days")


@seckill.command("preheat")
@click.argument("sale_id", type=int)
@with_appcontext
def preheat(sale_id):
    """Load a sale's units into Redis now (once; again does nothing)."""
    services = _services()
    if services.bus.in_process:
        raise click.UsageError(
            "GMALL_REDIS_URL is not set: the embedded shop preheats its sales itself, in its own "
            "process, when it starts"
        )
    sale = services.seckill.sales.get(sale_id)
    if sale is None:
        raise click.UsageError(f"no sale {sale_id}")
    if sale.end <= datetime.now():
        raise click.UsageError(f"sale {sale_id} ended at {sale.end}")
    try:
        loaded = services.seckill.preheat(sale)
    except DomainError as error:
        raise click.UsageError(str(error)) from None
    left = services.seckill.gate.units_left(sale.sku_id)
    click.echo(f"sale {sale_id} {'preheated' if loaded else 'was preheated already'}: {left} units left")


def _describe(sale) -> str:
    return (
        f"sale {sale.id}: SKU {sale.sku_id} {sale.title} ¥{sale.price} × {sale.units}, "
        f"{sale.start:%Y-%m-%d %H:%M:%S} .. {sale.end:%Y-%m-%d %H:%M:%S}"
    )
