"""The Dramatiq worker's entry point: ``dramatiq gmall_payment.webapp.worker``.

Importing it builds the application from the environment (GMALL_* settings, as the web
side does), declares the actors on the Redis broker it chose, and makes that broker
Dramatiq's global one, which is what the ``dramatiq`` command runs. ``gmall-payment worker``
runs the same thing. Redis unreachable at start: ``dramatiq`` exits with code 3 and says so.

With METRICS on, Dramatiq's Prometheus middleware serves every worker process's metrics,
Dramatiq's and the shop's (steps, reconciliation, expiry, transitions, drains), on its own
port (``dramatiq_prom_port``, 9191; ``dramatiq_prom_host``, 0.0.0.0): both write into
Dramatiq's directory (``dramatiq_prom_db``), named here before prometheus-client is imported.
"""

import os

import dramatiq
from dramatiq.middleware import prometheus

os.environ["PROMETHEUS_MULTIPROC_DIR"] = prometheus.DB_PATH

# Imported after the directory is named:
from ..adapters.dramatiq.broker import ensure_reachable
from .app import create_app

app = create_app()
services = app.extensions["gmall"]
if services.bus.in_process:
    raise ImportError(
        "GMALL_REDIS_URL is not set: `dramatiq` workers need Redis (e.g. redis://127.0.0.1:6379/0); "
        "the embedded default runs its worker inside the app"
    )
ensure_reachable(services.broker_settings)
broker = services.broker
if app.config["METRICS"]:
    broker.add_middleware(prometheus.Prometheus())
dramatiq.set_broker(broker)
