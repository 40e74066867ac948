"""The shopper's side of paying: choose a provider, go there, come back to our verdict."""

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from werkzeug.exceptions import Conflict

from ..core.errors import DomainError, UnknownProvider
from ..ports.provider import CheckoutUrls
from .context import owned_order, services
from .errors import error_page

bp = Blueprint("payment", __name__)

#: How long the return page asks the shop for the verdict before it says none came yet.
RETURN_POLL_SECONDS = 120
#: What the shopper did at the cashier, as the sandbox's return says it: shown as their own act,
#: never read as "paid" (only the database says that).
SHOPPER_STOPPED = ("cancelled", "failed")


@bp.after_request
def never_cached(response):
    """The pay steps are never stored: a page from the browser's cache (the back button) would
    offer the pay buttons of an order paid since."""
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/pay.html")
def choose():
    order = owned_order(request.args.get("orderToken", ""))
    return render_template("pay.html", order=order, providers=list(services().providers))


@bp.post("/pay/<provider>")
def start(provider):
    order = owned_order(request.form.get("orderToken", ""))
    try:
        checkout = services().payments.checkout(
            order["order_sn"], provider, _urls(provider, order["order_sn"])
        )
    except UnknownProvider as error:
        abort(404, description=str(error))
    except DomainError as error:
        return error_page(Conflict(str(error)), order=order)
    if checkout.redirect_url:
        return redirect(checkout.redirect_url, code=303)
    if checkout.form:
        return render_template("checkout_form.html", form=checkout.form)
    if checkout.qr:
        return render_template("checkout_qr.html", qr=checkout.qr, order=order, provider=provider)
    return checkout.html


@bp.get("/pay/return/<provider>")
def returned(provider):
    """The browser's return: shows what our database says, never the redirect's parameters."""
    order = owned_order(request.args.get("out_trade_no", ""))
    stopped = next((act for act in SHOPPER_STOPPED if request.args.get(act) == "1"), None)
    return render_template(
        "pay_result.html",
        order=order,
        provider=provider,
        shopper_stopped=stopped,
        poll_seconds=RETURN_POLL_SECONDS,
    )


@bp.get("/pay/ok")
def alipay_returned():
    """The seed's return_url for Alipay, beside ``/pay/return/alipay``."""
    return returned("alipay")


def _urls(provider, order_sn) -> CheckoutUrls:
    base = current_app.config["PUBLIC_URL"].rstrip("/")

    def absolute(endpoint, **values):
        if base:
            return base + url_for(endpoint, **values)
        return url_for(endpoint, **values, _external=True)

    return CheckoutUrls(
        notify_url=absolute("callbacks.notify", provider=provider),
        return_url=absolute("payment.returned", provider=provider),
        pay_page_url=absolute("payment.choose", orderToken=order_sn),
        client_ip=request.remote_addr,
        user_agent=request.user_agent.string,
    )
