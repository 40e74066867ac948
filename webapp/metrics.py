"""``GET /metrics``: the Prometheus exposition (``adapters.metrics``), for the scraper only.

With METRICS_TOKEN set, the scraper sends ``Authorization: Bearer <token>``. Unset, only a
loopback client gets it (its address as ``TRUSTED_PROXIES``' ProxyFix left it) and, in
PRODUCTION, nobody: a reverse proxy on the same host would make every shopper loopback.
METRICS false: 404, as for any unknown path.
"""

import hmac
import ipaddress

from flask import Blueprint, Response, abort, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST

from ..adapters.metrics import StateCollector, exposition
from ..adapters.state_metrics import state_sources
from .context import services

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics():
    config = current_app.config
    if not config["METRICS"]:
        abort(404)
    token = str(config.get("METRICS_TOKEN") or "")
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            return Response(
                "send Authorization: Bearer <METRICS_TOKEN>\n",
                status=401,
                mimetype="text/plain",
                headers={"WWW-Authenticate": 'Bearer realm="gmall-payment metrics"'},
            )
    elif config["PRODUCTION"] or not _loopback(request.remote_addr):
        abort(403, description="/metrics: set METRICS_TOKEN, or scrape from this host (never in PRODUCTION)")
    return Response(exposition(_state()), mimetype=CONTENT_TYPE_LATEST)


def _loopback(address: str | None) -> bool:
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False


def _state() -> StateCollector:
    """The scrape-time gauges, made once per app (their threads included)."""
    state = current_app.extensions.get("gmall_metrics_state")
    if state is None:
        state = StateCollector(
            state_sources(services(), current_app.app_context),
            float(current_app.config["METRICS_SCRAPE_TIMEOUT_SECONDS"]),
        )
        current_app.extensions["gmall_metrics_state"] = state
    return state
