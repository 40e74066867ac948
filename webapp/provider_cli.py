"""Operators' commands around providers: the notify log (list, show, replay) and the offline Alipay gateway."""

import json
from urllib.parse import parse_qsl

import click
from flask import current_app
from flask.cli import with_appcontext
from werkzeug.serving import run_simple

from ..plugins import rsa2
from ..plugins.alipay.config import GatewayConfig, is_configured
from ..plugins.alipay.gateway import GatewayApp
from ..plugins.alipay.sandbox_certificates import ALIPAY_FILE, APP_FILE, ROOT_FILE
from .formatting import shop_time
from .operator_cli import nothing_matched


def _payments():
    return current_app.extensions["gmall"].payments


@click.group("notifications")
def notifications():
    """The notify log: every provider notification received, with what became of it."""


@notifications.command("list")
@click.option("--provider", default=None, help="only this provider's notifications")
@click.option("--limit", default=20, show_default=True, help="how many, newest first")
@with_appcontext
def list_notifications(provider, limit):
    """The latest notifications, newest first (with what providers answered our queries)."""
    found = _payments().notifications(limit, provider)
    if not found:
        click.echo(nothing_matched("notification", provider=provider))
    for r in found:
        signature = "signed" if r.verified else "BAD-SIG"
        answer = "success" if r.accepted else "failure"
        replay = f" replay-of #{r.replay_of}" if r.replay_of else ""
        source = "" if r.source == "notify" else f" ({r.source})"
        click.echo(
            f"#{r.id} {shop_time(r.received_at)} {r.provider}{source} {r.out_trade_no or '-'} "
            f"notify_id={r.notify_id or '-'} {signature} {answer} {r.outcome}{replay}"
        )


@notifications.command("show")
@click.argument("record_id", type=int)
@with_appcontext
def show_notification(record_id):
    """One notification: its verdict and its raw body, field by field."""
    record = _payments().notification(record_id)
    if record is None:
        raise click.ClickException(f"no notification #{record_id}")
    for name in (
        "id",
        "provider",
        "source",
        "received_at",
        "notify_id",
        "out_trade_no",
        "verified",
        "accepted",
        "outcome",
        "detail",
        "replay_of",
    ):
        click.echo(f"{name}: {getattr(record, name)}")
    if record.headers is not None:  # the signed headers kept with the body (WeChat Pay's)
        click.echo("headers: " + record.headers)
    click.echo("raw: " + record.raw)
    try:
        fields = json.loads(record.raw)  # a JSON body (WeChat Pay's)
    except ValueError:
        fields = None
    if not isinstance(fields, dict):
        fields = dict(parse_qsl(record.raw, keep_blank_values=True))  # a form (Alipay's, mockpay's)
    click.echo(json.dumps(fields, ensure_ascii=False, indent=2, sort_keys=True))


@notifications.command("replay")
@click.argument("record_id", type=int)
@with_appcontext
def replay_notification(record_id):
    """Handle a logged notification again (e.g. one refused before its payment existed)."""
    try:
        result = _payments().replay(record_id)
    except LookupError as error:
        raise click.ClickException(str(error)) from None
    current_app.extensions["gmall"].bus.join()
    click.echo(
        f"#{result.record_id}: {result.outcome} -> {result.body}"
        + (f" ({result.detail})" if result.detail else "")
    )


@click.command("alipay-sandbox")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5001, show_default=True, type=int)
@with_appcontext
def alipay_sandbox(host, port):
    """Serve the offline Alipay gateway alone (gateway.do), for a shop configured against it."""
    settings = current_app.config
    config = GatewayConfig.from_settings(settings)
    url = f"http://{host}:{port}/gateway.do"
    click.echo(f"offline Alipay gateway at {url}  (app_id {config.app_id}, seller_id {config.seller_id})")
    click.echo("configure the shop with:")
    click.echo(f"  GMALL_ALIPAY_GATEWAY_URL={url}")
    click.echo(f"  GMALL_ALIPAY_APP_ID={config.app_id}")
    click.echo(f"  GMALL_ALIPAY_SELLER_ID={config.seller_id}")
    if config.certificates is None:
        click.echo(f"  GMALL_ALIPAY_PUBLIC_KEY={rsa2.public_key_base64(config.private_key.public_key())}")
    else:  # certificate mode: the files it generated, in place of its public key
        for setting, filename in (("APP", APP_FILE), ("PUBLIC", ALIPAY_FILE), ("ROOT", ROOT_FILE)):
            click.echo(f"  GMALL_ALIPAY_{setting}_CERT_FILE={settings['INSTANCE_PATH']}/alipay/{filename}")
    if (
        not is_configured(settings)
        and not settings.get("ALIPAY_SANDBOX_MERCHANT_PUBLIC_KEY")
        and not settings.get("ALIPAY_SANDBOX_MERCHANT_PUBLIC_KEY_FILE")
    ):
        click.echo(
            f"  GMALL_ALIPAY_APP_PRIVATE_KEY_FILE={settings['INSTANCE_PATH']}/alipay/merchant_private.pem"
        )
    run_simple(host, port, GatewayApp(config), threaded=True)
