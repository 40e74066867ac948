"""The shopper's side of paying: choose a provider, go there, come back to our verdict."""

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for

from ..core.errors import DomainError, UnknownProvider
from ..ports.providers import CheckoutUrls
from .context import owned_order, services

bp = Blueprint("payment", __name__)


@bp.get("/pay.html")
def choose():
    order = owned_order(request.args.get("orderToken", ""))
    return render_template("pay.html", order=order, providers=list(services().providers))


@bp.post("/pay/<provider>")
def start(provider):
    order = owned_order(request.form.get("orderToken", ""))
    try:
        checkout = services().payments.checkout(order["order_sn"], provider, _urls(provider))
    except UnknownProvider as error:
        abort(404, description=str(error))
    except DomainError as error:
        return render_template("error.html", message=str(error), order=order), 409
    if checkout.redirect_url:
        return redirect(checkout.redirect_url, code=303)
    return checkout.html


@bp.get("/pay/return/<provider>")
def returned(provider):
    """The browser's return: shows what our database says, never the redirect's parameters."""
    order = owned_order(request.args.get("out_trade_no", ""))
    return render_template("pay_result.html", order=order, provider=provider)


@bp.get("/pay/ok")
def alipay_returned():
    """The seed's return_url for Alipay, beside ``/pay/return/alipay``."""
    return returned("alipay")


def _urls(provider) -> CheckoutUrls:
    base = current_app.config["PUBLIC_URL"].rstrip("/")

    def absolute(endpoint):
        if base:
            return base + url_for(endpoint, provider=provider)
        return url_for(endpoint, provider=provider, _external=True)

    return CheckoutUrls(notify_url=absolute("callbacks.notify"), return_url=absolute("payment.returned"))
