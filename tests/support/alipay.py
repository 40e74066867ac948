"""Constants and helpers the Alipay tests share."""

import contextlib
import re
import uuid
from datetime import datetime
from decimal import Decimal
from html import unescape
from pathlib import Path

import requests

from gmall_payment.core.model import Payment
from gmall_payment.plugins import rsa2
from gmall_payment.plugins.alipay.gateway import make_gateway_app
from gmall_payment.ports.provider import CheckoutUrls
from support.servers import serving
from support.shop import browser_login, csrf_token, make_app

APP_ID = "2021000000000777"
SELLER_ID = "2088000000000777"
#: Alipay's notify schedule divided by this: 4 min -> 0.01 s, 15 h -> 2.25 s.
SPEEDUP = 24000
#: Alipay's root bundle (alipayRootCert.crt: public, every application downloads it).
ALIPAY_ROOT_BUNDLE = Path(__file__).parents[1] / "alipay" / "fixtures" / "alipayRootCert.crt"


@contextlib.contextmanager
def served_gateway(settings):
    """The offline gateway for ``settings`` served on loopback; ``gateway.url`` is its gateway.do."""
    app = make_gateway_app(settings)
    with serving(app) as base_url:
        app.url = f"{base_url}/gateway.do"
        yield app
    app.notifier.join(10)


def a_payment(out_trade_no="202411110001", amount="123.45", subject="谷粒商城-华为 Mate 60") -> Payment:
    return Payment(
        order_sn=out_trade_no,
        payment_type="alipay",
        total_amount=Decimal(amount),
        subject=subject,
        create_time=datetime(2024, 11, 11),
    )


def form_fields(html: str) -> dict:
    return {name: unescape(value) for name, value in re.findall(r'name="([^"]+)" value="([^"]*)"', html)}


def form_action(html: str) -> str:
    return unescape(re.search(r'<form[^>]* action="([^"]+)"', html).group(1))


def open_cashier(provider, payment, notify_url, return_url="http://127.0.0.1:9/pay/ok", session=None):
    """Check out as the shop does, submit the auto-submitting form, land on the gateway's cashier."""
    session = session or requests.Session()
    checkout = provider.checkout(payment, CheckoutUrls(notify_url, return_url))
    if checkout.redirect_url:
        return session.get(checkout.redirect_url)
    return session.post(checkout.form.action, data=dict(checkout.form.fields))


def pay_on_cashier(cashier, action="pay", scenario="normal", session=None, follow=False):
    """Press a button on the cashier page; ``follow``: go on to the shop's return page."""
    base = re.match(r"https?://[^/]+", cashier.url).group(0)
    return (session or requests.Session()).post(
        base + form_action(cashier.text),
        data={**form_fields(cashier.text), "action": action, "scenario": scenario},
        allow_redirects=follow,
    )


def start_on_cashier(app, base_url, order_sn, browser=None):
    """Log in, choose 支付宝, let the auto-submitting form post to the gateway: the cashier page
    (the phone's, for a ``browser`` whose User-Agent is a phone's)."""
    browser = browser or browser_login(base_url)
    pay_page = browser.get(f"{base_url}/pay.html", params={"orderToken": order_sn})
    assert "支付宝" in pay_page.text
    form = browser.post(
        f"{base_url}/pay/alipay", data={"orderToken": order_sn, "csrf_token": csrf_token(pay_page.text)}
    )
    assert form.status_code == 200 and 'id="checkout-form"' in form.text
    action = form_action(form.text)
    if action.startswith("/"):
        action = base_url + action
    cashier = browser.post(action, data=form_fields(form.text))
    assert cashier.status_code == 200 and re.search("支付宝 (手机)?收银台", cashier.text), cashier.text
    assert order_sn in cashier.text
    return browser, cashier


def issued_by_gateway_ca(folder, label, public_key, **validity) -> bytes:
    """A certificate file, as Alipay's hold them: a throw-away certificate for ``public_key`` issued
    by the offline gateway's Class 2 CA (kept in ``folder``), then that CA's certificate."""
    from gmall_payment.plugins.alipay.certificates import read_certificates
    from gmall_payment.plugins.alipay.sandbox_certificates import ALIPAY_FILE, issue, name, pem

    class2 = read_certificates((folder / ALIPAY_FILE).read_bytes(), "alipay")[1]
    class2_key = rsa2.load_private_key((folder / "class2_ca_private.pem").read_bytes())
    return pem(issue(name(f"{label} (throw-away)"), public_key, class2, class2_key, **validity), class2)


@contextlib.contextmanager
def shop_and_gateway(tmp_path, settings, **overrides):
    """The offline gateway on a server of its own (as `gmall-payment alipay-sandbox` runs it) and
    the shop configured for it, served: (app, gateway, base_url); the notifies finished after."""
    with served_gateway(settings) as gateway:
        app = make_app(tmp_path, **settings, ALIPAY_GATEWAY_URL=gateway.url, **overrides)
        with serving(app) as base_url:
            app.config["PUBLIC_URL"] = base_url
            try:
                yield app, gateway, base_url
            finally:
                app.extensions["gmall"].bus.close()


def signed_notify(payment, key, config, **changes):
    """Alipay's notify that ``payment`` was paid, with ``changes``, signed with ``key`` as Alipay signs."""
    params = {
        "notify_id": uuid.uuid4().hex,
        "notify_type": "trade_status_sync",
        "app_id": config.app_id,
        "seller_id": config.seller_id,
        "out_trade_no": payment.out_trade_no,
        "trade_no": "2024111122001400001" + payment.out_trade_no[-6:],
        "total_amount": f"{payment.total_amount:.2f}",
        "buyer_pay_amount": f"{payment.total_amount:.2f}",
        "trade_status": "TRADE_SUCCESS",
        "charset": "utf-8",
        "version": "1.0",
        **changes,
    }
    return {**params, "sign_type": "RSA2", "sign": rsa2.sign(params, key)}
