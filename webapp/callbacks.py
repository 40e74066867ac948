"""Providers' asynchronous notifications: verified by signature (CSRF-exempt).

What a stranger can post here is bounded: a body over NOTIFY_MAX_BYTES is refused (413)
before it is read in full and stored nowhere; refused notifications are logged at most
NOTIFY_REFUSED_LOG_PER_MINUTE per address (``throttles.RefusalLog``). One the shop fails to
handle (its database down) is refused with a 500 in the provider's own words, so the provider
sends it again on its retry series.
"""

import logging

from flask import Blueprint, Response, abort, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from ..adapters.metrics import METRICS
from ..core.errors import UnknownProvider
from .context import services
from .throttles import throttles

log = logging.getLogger(__name__)
bp = Blueprint("callbacks", __name__)


@bp.post("/notify/<provider>")
def notify(provider):
    try:
        refusal = services().providers.get(provider).acknowledge(False)
    except UnknownProvider as error:
        abort(404, description=str(error))
    address = request.remote_addr or ""
    # Content-Length is checked first; a body without one (chunked) is cut off while it is read.
    request.max_content_length = int(current_app.config["NOTIFY_MAX_BYTES"])
    try:
        raw = request.get_data(cache=True, as_text=True)  # read first: the form is then parsed from the cache
    except RequestEntityTooLarge:
        throttles().refusals.not_kept(address, "a body over NOTIFY_MAX_BYTES")
        METRICS.notification(provider, "too_large", False)
        return Response(refusal.body, status=413, content_type=refusal.content_type)
    try:
        result = services().payments.handle_notification(
            provider,
            request.form.to_dict(),
            raw=raw,
            keep_refused=lambda: throttles().refusals.keep(address),
            headers=dict(request.headers),
        )
    except Exception:  # the shop's own failure (its database...): the provider sends it again
        log.exception("%s notification not handled", provider)
        METRICS.notification(provider, "error", False)
        return Response(refusal.body, status=500, content_type=refusal.content_type)
    METRICS.notification(provider, result.outcome, result.accepted)
    return Response(result.body, status=result.status, content_type=result.content_type)


@bp.post("/pay/success")
def alipay_notify():
    """The seed's notify_url for Alipay, beside ``/notify/alipay``."""
    return notify("alipay")
