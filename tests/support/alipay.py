"""Constants and helpers the Alipay tests share."""

import re
from datetime import datetime
from decimal import Decimal
from html import unescape

import requests

from gmall_payment.core.model import Payment
from gmall_payment.ports.providers import CheckoutUrls

APP_ID = "2021000000000777"
SELLER_ID = "2088000000000777"
#: Alipay's notify schedule divided by this: 4 min -> 0.01 s, 15 h -> 2.25 s.
SPEEDUP = 24000


def a_payment(out_trade_no="202411110001", amount="123.45", subject="谷粒商城-华为 Mate 60") -> Payment:
    return Payment(order_sn=out_trade_no, payment_type="alipay", total_amount=Decimal(amount), subject=subject,
                   create_time=datetime(2024, 11, 11))


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
    return session.post(form_action(checkout.html), data=form_fields(checkout.html))


def pay_on_cashier(cashier, action="pay", scenario="normal", session=None, follow=False):
    """Press a button on the cashier page; ``follow``: go on to the shop's return page."""
    base = re.match(r"https?://[^/]+", cashier.url).group(0)
    return (session or requests.Session()).post(
        base + form_action(cashier.text),
        data={**form_fields(cashier.text), "action": action, "scenario": scenario},
        allow_redirects=follow,
    )
