"""Providers' asynchronous notifications: verified by signature (CSRF-exempt)."""

from flask import Blueprint, Response, abort, request

from ..core.errors import UnknownProvider
from .context import services

bp = Blueprint("callbacks", __name__)


@bp.post("/notify/<provider>")
def notify(provider):
    raw = request.get_data(cache=True, as_text=True)  # read first: the form is then parsed from the cache
    try:
        result = services().payments.handle_notification(provider, request.form.to_dict(), raw=raw)
    except UnknownProvider as error:
        abort(404, description=str(error))
    return Response(result.body, status=result.status, content_type=result.content_type)


@bp.post("/pay/success")
def alipay_notify():
    """The seed's notify_url for Alipay, beside ``/notify/alipay``."""
    return notify("alipay")
