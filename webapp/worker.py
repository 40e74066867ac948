"""The Dramatiq worker's entry point: ``dramatiq gmall_payment.webapp.worker``.

Importing it builds the application from the environment (GMALL_* settings, as the web
side does), declares the actors on the Redis broker it chose, and makes that broker
Dramatiq's global one, which is what the ``dramatiq`` command runs. ``gmall-payment worker``
runs the same thing. Redis unreachable at start: ``dramatiq`` exits with code 3 and says so.
"""

import dramatiq

from ..adapters.dramatiq.broker import ensure_reachable
from .app import create_app

app = create_app()
services = app.extensions["gmall"]
if services.bus.in_process:
    raise ImportError(
        "GMALL_REDIS_URL is not set: `dramatiq` workers need Redis (e.g. redis://127.0.0.1:6379/0); "
        "the embedded default runs its worker inside the app"
    )
ensure_reachable(services.settings.redis_url)
broker = services.broker
dramatiq.set_broker(broker)
