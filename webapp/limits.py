"""Rate limits on the flash sale's click (flask-limiter): per member and per IP address.

Counted where the composition root says (Redis with REDIS_URL, else in this process);
over a limit the answer is 429 with Retry-After. The X-RateLimit headers are not sent on
every answer: each would cost the click another storage round trip; Retry-After is
worked out on the 429 alone.
"""

import time

from flask import Flask, make_response, session
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import parse_many

from ..adapters.bootstrap import Services
from . import seckill


def limit_clicks(app: Flask, services: Services) -> Limiter:
    """Put SECKILL_RATE_LIMIT_MEMBER and SECKILL_RATE_LIMIT_IP on ``seckill.click``; a limit
    that does not parse stops the shop at start, naming its setting."""
    config = services.seckill_settings
    for key, value in (("SECKILL_RATE_LIMIT_MEMBER", config.rate_limit_member),
                       ("SECKILL_RATE_LIMIT_IP", config.rate_limit_ip)):
        try:
            parse_many(value)
        except ValueError as error:
            raise ValueError(f"{key}={value!r} is not a rate limit such as '5/second' ({error})") from None
    limiter = Limiter(get_remote_address, app=app, storage_uri=services.rate_limit_storage,
                      key_prefix=services.settings.namespace, headers_enabled=False, strategy="fixed-window")
    per_member = limiter.limit(config.rate_limit_member, key_func=lambda: f"member:{session['member_id']}",
                               exempt_when=lambda: "member_id" not in session, scope="member")
    per_ip = limiter.limit(config.rate_limit_ip, key_func=get_remote_address, scope="ip")
    app.view_functions["seckill.click"] = per_ip(per_member(app.view_functions["seckill.click"]))

    def too_many_requests(error):
        """429 and when the breached limit's window resets (Retry-After, whole seconds)."""
        response = make_response(seckill.too_many_requests())
        breached = limiter.current_limit
        wait = breached.reset_at - time.time() if breached else error.limit.limit.get_expiry()
        response.headers["Retry-After"] = str(max(1, int(wait)))
        return response

    app.register_error_handler(429, too_many_requests)
    return limiter
