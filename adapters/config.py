"""Settings the adapters read, each declared once with its default (``ports.settings.setting``)
and checked once at start, so a typo stops the shop with the setting's name instead of
failing on the first request."""

from collections.abc import Mapping
from dataclasses import dataclass

from limits import parse_many

from ..core.seckill import ClickLimits, RateLimit
from ..ports.settings import from_settings, setting


@dataclass(frozen=True)
class SeckillSettings:
    """The flash sale's settings (``SECKILL_*``)."""

    pay_within_seconds: float = setting("SECKILL_PAY_WITHIN_SECONDS", 1800.0, positive=True)
    pay_wait_seconds: float = setting("SECKILL_PAY_WAIT_SECONDS", 5.0, positive=True)
    preheat_ahead_seconds: float = setting("SECKILL_PREHEAT_AHEAD_SECONDS", 300.0)
    tick_seconds: float = setting("SECKILL_TICK_SECONDS", 1.0, positive=True)
    claim_after_seconds: float = setting("SECKILL_CLAIM_AFTER_SECONDS", 30.0, positive=True)
    batch: int = setting("SECKILL_BATCH", 500, positive=True)
    linger_seconds: float = setting("SECKILL_LINGER_SECONDS", 0.1)
    max_deliveries: int = setting("SECKILL_MAX_DELIVERIES", 5, positive=True)
    rate_limit_member: str = setting("SECKILL_RATE_LIMIT_MEMBER", "5/second")
    rate_limit_ip: str = setting("SECKILL_RATE_LIMIT_IP", "50/second")
    rate_limit_wait: str = setting("SECKILL_RATE_LIMIT_WAIT", "5/second")
    redis_timeout_seconds: float = setting("SECKILL_REDIS_TIMEOUT_SECONDS", 0.5, positive=True)

    @classmethod
    def from_settings(cls, settings: Mapping) -> "SeckillSettings":
        return from_settings(cls, settings)._checked()

    def _checked(self) -> "SeckillSettings":
        for key, value in (
            ("SECKILL_RATE_LIMIT_MEMBER", self.rate_limit_member),
            ("SECKILL_RATE_LIMIT_IP", self.rate_limit_ip),
            ("SECKILL_RATE_LIMIT_WAIT", self.rate_limit_wait),
        ):
            try:
                parse_many(value)
            except ValueError as error:
                raise ValueError(
                    f"{key}={value!r} is not a rate limit such as '5/second' ({error})"
                ) from None
        return self

    @property
    def click_limits(self) -> ClickLimits:
        """The click's limits, which the gate counts (the limits library's syntax, e.g. ``10/second;100/minute``)."""

        def parsed(value):
            return tuple(RateLimit(item.amount, item.get_expiry()) for item in parse_many(value))

        return ClickLimits(member=parsed(self.rate_limit_member), ip=parsed(self.rate_limit_ip))


@dataclass(frozen=True)
class LifecycleSettings:
    """A payment's life after checkout: reconciliation, order expiry and the daily bills."""

    #: Payments still unpaid this long after they start are asked about (then on the provider's
    #: retry series); workers look for them every ``reconcile_seconds`` (0: never).
    query_grace_seconds: float = setting("RECONCILE_GRACE_SECONDS", 300.0)
    reconcile_seconds: float = setting("RECONCILE_SECONDS", 60.0)
    reconcile_batch: int = setting("RECONCILE_BATCH", 100, positive=True)
    #: Orders unpaid this long after they were placed are closed, with their trades; workers
    #: look for them every ``expiry_seconds`` (0: never). ORDER_PAY_TIMEOUT is the old name.
    order_pay_timeout_seconds: float = setting(
        "ORDER_PAY_TIMEOUT_SECONDS", 1800.0, positive=True, formerly="ORDER_PAY_TIMEOUT"
    )
    expiry_seconds: float = setting("EXPIRY_SECONDS", 60.0)
    expiry_batch: int = setting("EXPIRY_BATCH", 100, positive=True)
    #: Workers fetch yesterday's bill of each provider that keeps bills (Alipay) once a day, from
    #: ``bills_fetch_hour`` o'clock on (the shop's clock), when ``bills_fetch`` is on.
    bills_fetch: bool = setting("BILLS_FETCH", False)
    bills_fetch_hour: int = setting("BILLS_FETCH_HOUR", 10)

    @classmethod
    def from_settings(cls, settings: Mapping) -> "LifecycleSettings":
        return from_settings(cls, settings)._checked()

    def _checked(self) -> "LifecycleSettings":
        if not 0 <= self.bills_fetch_hour <= 23:
            raise ValueError(
                f"BILLS_FETCH_HOUR={self.bills_fetch_hour!r} is not an hour of the day (0 to 23)"
            )
        return self
