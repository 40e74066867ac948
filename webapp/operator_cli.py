"""Operators' commands: the payments (list, show, refund, clear-flag) and the operator token."""

import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from ..adapters.sql import queries
from ..core.errors import (
    DomainError,
    InvalidAmount,
    PaymentNotFound,
    RefundPending,
    RefundRefused,
)
from ..core.model import PaymentStatus, label
from .formatting import shop_time, status_label

#: Exit code of a refund whose answer is not known yet (EX_TEMPFAIL: try again later).
EXIT_PENDING = 75


def _services():
    return current_app.extensions["gmall"]


def _line(p: dict) -> str:
    refunded = f" refunded ¥{p['refunded']}" if p["refunded"] != "0.00" else ""
    reserved = f" (¥{p['refund_reserved']} reserved)" if p["refund_reserved"] != p["refunded"] else ""
    reason = f" [{p['refund_reason']}{', owed back' if p['owed_back'] else ''}]" if p["refund_reason"] else ""
    flag = f" FLAG: {p['flag']}" if p["flag"] else ""
    order = f"order: {status_label(p['order_status'], 'order')}" if p["order_status"] else "no such order"
    return (
        f"#{p['id']} {p['order_sn']} ({order}) {p['provider']}: {status_label(p['status'])} ¥{p['total_amount']}"
        f"{refunded}{reserved}{reason}{flag}"
    )


def nothing_matched(what: str, **filters) -> str:
    """The line an empty listing prints, with the filters that found nothing."""
    given = ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in filters.items() if value)
    return f"no {what} matched" + (f" ({given})" if given else "")


@click.group("payments")
def payments():
    """Payments: their status, what providers said, refunds, what needs an operator."""


@payments.command("list")
@click.option("--status", type=click.Choice([s.name.lower() for s in PaymentStatus]), default=None)
@click.option(
    "--attention",
    type=click.Choice(list(queries.ATTENTION)),
    default=None,
    help="flagged: for an operator; owed: owed back, not refunded yet; attention: either, or ever owed",
)
@click.option("--order", "order_sn", default=None, help="the payments of this order")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@with_appcontext
def list_payments(status, attention, order_sn, limit):
    """The latest payments, newest first."""
    found = queries.payments(status=status, attention=attention, order_sn=order_sn, limit=limit)
    for p in found:
        click.echo(_line(p))
    if not found:
        click.echo(nothing_matched("payment", status=status, attention=attention, order=order_sn))


@payments.command("show")
@click.argument("payment_id", type=int)
@with_appcontext
def show_payment(payment_id):
    """One payment: its state, every notification and query answer about it, its refunds."""
    p = queries.payment(payment_id)
    if p is None:
        raise click.ClickException(str(PaymentNotFound(payment_id)))
    click.echo(_line(p))
    code = "-" if p["payment_type_code"] is None else p["payment_type_code"]
    click.echo(f"  payment_type {code} (the seed's code of {p['provider']})")
    click.echo(
        f"  out_trade_no {p['out_trade_no']}  trade_no {p['trade_no'] or '-'}  created {shop_time(p['create_time'])}"
        f"  paid {shop_time(p['callback_time'])}"
    )
    click.echo(
        f"  refundable ¥{p['refundable']}  queries {p['query_attempts']}"
        + (
            f", next {shop_time(p['next_query_time'])}"
            if p["next_query_time"] and p["status"] == "unpaid"
            else ""
        )
    )
    click.echo("notifications and queries:")
    for n in p["notifications"] or [{"id": None}]:
        if n["id"] is None:
            click.echo("  (none)")
            continue
        click.echo(
            f"  #{n['id']} {shop_time(n['received_at'])} {n['source']} {'signed' if n['verified'] else 'BAD-SIG'} "
            f"{'success' if n['accepted'] else 'failure'} {n['outcome']}"
            + (f" - {n['detail']}" if n["detail"] else "")
        )
    click.echo("refunds:")
    for r in p["refunds"] or [{"id": None}]:
        if r["id"] is None:
            click.echo("  (none)")
            continue
        click.echo(
            f"  {r['out_request_no']} ¥{r['amount']} {r['reason']} {status_label(r['status'], 'refund')} "
            f"{shop_time(r['update_time'])}" + (f" - {r['answer']}" if r["answer"] else "")
        )
    for other in p["order_payments"]:
        click.echo(f"other payment of the order: {_line(other)}")


@payments.command("refund")
@click.argument("payment_id", type=int)
@click.argument("amount")
@click.option(
    "--key",
    "out_request_no",
    required=True,
    help="the idempotency key (Alipay's out_request_no): the same key again is the same refund",
)
@with_appcontext
def refund(payment_id, amount, out_request_no):
    """Refund AMOUNT (yuan, e.g. 12.30) of a payment through its provider."""
    services = _services()
    try:
        done = services.refunds.refund(payment_id, amount, out_request_no)
    except RefundPending as error:
        click.echo(f"pending: {error}", err=True)
        sys.exit(EXIT_PENDING)
    except (RefundRefused, InvalidAmount, DomainError) as error:
        raise click.ClickException(str(error)) from None
    finally:
        services.bus.drain()  # taking the points back (a full refund) runs before the command exits
    click.echo(
        f"refund {done.out_request_no} of payment #{payment_id}: ¥{done.amount:.2f} {label(done.status)}"
    )
    click.echo(_line(queries.payment(payment_id)))


@payments.command("clear-flag")
@click.argument("payment_id", type=int)
@with_appcontext
def clear_flag(payment_id):
    """Say that what a payment was flagged for is handled."""
    try:
        _services().payments.clear_flag(payment_id)
    except PaymentNotFound as error:
        raise click.ClickException(str(error)) from None
    click.echo(_line(queries.payment(payment_id)))


@click.command("operator-token")
@with_appcontext
def operator_token():
    """Print the operators' token (the embedded default makes one in the instance folder)."""
    token = current_app.config.get("OPERATOR_TOKEN")
    if not token:
        raise click.ClickException(
            "operator access is off: set OPERATOR_TOKEN (there is no default with REDIS_URL)"
        )
    click.echo(token)
