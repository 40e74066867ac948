"""What strangers can make the shop do: guess passwords, and fill the notify log.

- Logins (``/login``, ``/operator/login``): failures are counted per account
  (LOGIN_RATE_LIMIT_ACCOUNT) and per address (LOGIN_RATE_LIMIT_IP); over either, the answer
  is 429 with Retry-After before any password is checked, the same for an account that does
  not exist. A success resets that account's count (never the address's). The operator page
  has one account (the token), so its count is every operator's.
- Refused notifications are logged at most NOTIFY_REFUSED_LOG_PER_MINUTE per source address;
  past that they are still answered, not stored, and one log line a minute says so.

Counted with ``limits`` (fixed windows) where the composition root says: Redis with
REDIS_URL, else this process, like the flash sale's waiting steps (``limits.py``). While
Redis cannot be reached they are counted in this process (a warning a minute says so), so
that an outage neither fails every login nor lifts the limits.
"""

import hashlib
import logging
import time
from dataclasses import dataclass

from flask import Flask, current_app, make_response, render_template
from limits import RateLimitItemPerMinute, parse_many
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from ..adapters.bootstrap import Services
from ..core.seckill import retry_after

log = logging.getLogger(__name__)

#: What a login over its limits reads; the same whether the account exists or not.
TOO_MANY_ATTEMPTS = "尝试次数过多,请稍后再试 / too many attempts, try again later"


class Counter:
    """Fixed windows in the shared storage, or in this process while that cannot be reached."""

    def __init__(self, storage_uri: str):
        options = (
            {"socket_connect_timeout": 2, "socket_timeout": 2} if storage_uri.startswith("redis") else {}
        )
        self.shared = FixedWindowRateLimiter(
            storage_from_string(storage_uri, wrap_exceptions=True, **options)
        )
        self.local = FixedWindowRateLimiter(storage_from_string("memory://"))

    def hit(self, limit, *keys) -> bool:
        return self._counted("hit", limit, keys)

    def test(self, limit, *keys) -> bool:
        return self._counted("test", limit, keys)

    def clear(self, limit, *keys) -> None:
        self._counted("clear", limit, keys)

    def get_window_stats(self, limit, *keys):
        return self._counted("get_window_stats", limit, keys)

    def _counted(self, name, limit, keys):
        try:
            return getattr(self.shared, name)(limit, *keys)
        except StorageError as error:
            if self.local.hit(RateLimitItemPerMinute(1), "storage-warned"):
                log.warning(
                    "rate limits counted in this process: their storage cannot be reached (%s)", error
                )
            return getattr(self.local, name)(limit, *keys)


class LoginThrottle:
    """Failed logins per account and per address, of one kind of login ("member", "operator")."""

    def __init__(self, limiter: Counter, scope: tuple, per_account: str, per_address: str):
        self.limiter = limiter
        self.scope = scope
        self.per_account = parse_many(per_account)
        self.per_address = parse_many(per_address)

    def attempt(self, kind: str, account: str, address: str) -> float | None:
        """Count an attempt on ``account`` from ``address``; the seconds to wait before trying
        again if it is over a limit (then check nothing), else None.

        The account's count is taken before the password is checked, so that guesses made at
        once cannot all pass; ``succeeded`` gives it back. The address counts failures only."""
        account_key = self._account(kind, account)
        address_key = (*self.scope, kind, "address", address)
        over = [
            (limit, address_key) for limit in self.per_address if not self.limiter.test(limit, *address_key)
        ]
        if not over:
            over = [
                (limit, account_key)
                for limit in self.per_account
                if not self.limiter.hit(limit, *account_key)
            ]
        if not over:
            return None
        reset = max(self.limiter.get_window_stats(limit, *key).reset_time for limit, key in over)
        return max(reset - time.time(), 0.0)

    def failed(self, kind: str, address: str) -> None:
        for limit in self.per_address:
            self.limiter.hit(limit, *self.scope, kind, "address", address)

    def succeeded(self, kind: str, account: str) -> None:
        for limit in self.per_account:
            self.limiter.clear(limit, *self._account(kind, account))

    def _account(self, kind, account) -> tuple:
        # The database compares usernames without case or trailing spaces (MariaDB): so does this.
        digest = hashlib.sha256(account.strip().casefold().encode("utf-8")).hexdigest()
        return (*self.scope, kind, "account", digest)


class RefusalLog:
    """Whether a refused notification from an address is kept: NOTIFY_REFUSED_LOG_PER_MINUTE."""

    def __init__(self, limiter: Counter, scope: tuple, per_minute: int):
        self.limiter = limiter
        self.scope = scope
        self.per_minute = per_minute
        self.limit = RateLimitItemPerMinute(per_minute) if per_minute else None
        self.warning = RateLimitItemPerMinute(1)

    def keep(self, address: str) -> bool:
        if self.limit is not None and self.limiter.hit(self.limit, *self.scope, "kept", address):
            return True
        self.not_kept(address, f"over NOTIFY_REFUSED_LOG_PER_MINUTE ({self.per_minute})")
        return False

    def not_kept(self, address: str, why: str) -> None:
        """Log (once a minute per address) that refused notifications are not stored, and why."""
        if self.limiter.hit(self.warning, *self.scope, "warned", address):
            log.warning(
                "notifications from %s refused and not stored: %s (said once a minute per address)",
                address,
                why,
            )


@dataclass(frozen=True)
class Throttles:
    login: LoginThrottle
    refusals: RefusalLog


def too_many_attempts(wait: float, template: str, **context):
    """The login page over a limit: 429 and Retry-After."""
    response = make_response(render_template(template, error=TOO_MANY_ATTEMPTS, **context), 429)
    response.headers["Retry-After"] = str(retry_after(wait))
    return response


def throttles() -> Throttles:
    """The current app's throttles."""
    return current_app.extensions["gmall-throttles"]


def install(app: Flask, services: Services) -> None:
    """Make the throttles of this app from its settings, in the storage the composition root chose."""
    limiter = Counter(services.rate_limit_storage)
    scope = (services.broker_settings.namespace,)
    config = app.config
    per_minute = int(config["NOTIFY_REFUSED_LOG_PER_MINUTE"])  # checked by settings.read
    app.extensions["gmall-throttles"] = Throttles(
        LoginThrottle(
            limiter, (*scope, "login"), config["LOGIN_RATE_LIMIT_ACCOUNT"], config["LOGIN_RATE_LIMIT_IP"]
        ),
        RefusalLog(limiter, (*scope, "notify-refused"), per_minute),
    )
