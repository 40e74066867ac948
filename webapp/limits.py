"""The rate limit on the flash sale's waiting steps: the pay step, which holds a web thread
for up to SECKILL_PAY_WAIT_SECONDS, and the status its page polls, per member
(SECKILL_RATE_LIMIT_WAIT), over the limit 429 with Retry-After.

Counted with ``limits`` (flask-limiter's engine, fixed windows) where the composition root
says: Redis with REDIS_URL, else this process. Only these two views pay for it: flask-limiter
itself would run its hooks on every request of the shop, the click included. The click's
own limits are counted by the reservation script, so that a click stays one round trip
(``adapters/redis/seckill.py``).
"""

import functools
import time

from flask import Flask
from limits import parse_many
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from ..adapters.bootstrap import Services
from . import seckill
from .context import current_member

WAITS = ("seckill.pay", "seckill.status")


def limit_waits(app: Flask, services: Services) -> None:
    """Wrap the waiting views so that each counts a member's request against the limit."""
    timeout = (
        services.seckill_settings.redis_timeout_seconds
    )  # a Redis storage's own client: not the default (none)
    limiter = FixedWindowRateLimiter(
        storage_from_string(
            services.rate_limit_storage, socket_timeout=timeout, socket_connect_timeout=timeout
        )
    )
    limits = parse_many(services.seckill_settings.rate_limit_wait)
    scope = (services.broker_settings.namespace, "seckill-wait")

    def limited(view):
        @functools.wraps(view)
        def counted(*args, **kwargs):
            member = current_member()  # the view reads it again from the session's identity map
            if member is not None:  # the view itself turns strangers away
                who = (*scope, str(member.id))
                breached = [limit for limit in limits if not limiter.hit(limit, *who)]
                if breached:
                    reset = max(limiter.get_window_stats(limit, *who).reset_time for limit in breached)
                    return seckill.too_many_requests(reset - time.time())
            return view(*args, **kwargs)

        return counted

    for endpoint in WAITS:
        app.view_functions[endpoint] = limited(app.view_functions[endpoint])
