"""Settings the adapters read: numbers checked once at start, so a typo stops the shop
with the setting's name instead of failing on the first request."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from limits import parse_many

from ..core.seckill import ClickLimits, RateLimit


def numbers(settings: Mapping, default, spec: Iterable[tuple[str, str, type, bool]]) -> dict:
    """``{field: value}`` for each ``(field, KEY, int or float, may_be_zero)`` of ``spec``,
    read from ``settings[KEY]`` or ``default.field``; raises ValueError, naming the key,
    for a negative number (or zero where it may not be)."""
    values = {}
    for field, key, kind, may_be_zero in spec:
        value = kind(settings.get(key, getattr(default, field)))
        if value < 0 or (value == 0 and not may_be_zero):
            raise ValueError(f"{key} must be a number {'>=' if may_be_zero else '>'} 0, got {value!r}")
        values[field] = value
    return values


@dataclass(frozen=True)
class SeckillSettings:
    """The flash sale's settings (``SECKILL_*``)."""

    pay_within_seconds: float = 1800.0
    pay_wait_seconds: float = 5.0
    preheat_ahead_seconds: float = 300.0
    tick_seconds: float = 1.0
    claim_after_seconds: float = 30.0
    batch: int = 500
    linger_seconds: float = 0.1
    max_deliveries: int = 5
    rate_limit_member: str = "5/second"
    rate_limit_ip: str = "50/second"
    rate_limit_wait: str = "5/second"

    @classmethod
    def from_settings(cls, settings: Mapping) -> "SeckillSettings":
        default = cls()
        return cls(
            rate_limit_member=str(settings.get("SECKILL_RATE_LIMIT_MEMBER") or default.rate_limit_member),
            rate_limit_ip=str(settings.get("SECKILL_RATE_LIMIT_IP") or default.rate_limit_ip),
            rate_limit_wait=str(settings.get("SECKILL_RATE_LIMIT_WAIT") or default.rate_limit_wait),
            **numbers(settings, default, (
                ("pay_within_seconds", "SECKILL_PAY_WITHIN_SECONDS", float, False),
                ("pay_wait_seconds", "SECKILL_PAY_WAIT_SECONDS", float, False),
                ("preheat_ahead_seconds", "SECKILL_PREHEAT_AHEAD_SECONDS", float, True),
                ("tick_seconds", "SECKILL_TICK_SECONDS", float, False),
                ("claim_after_seconds", "SECKILL_CLAIM_AFTER_SECONDS", float, False),
                ("batch", "SECKILL_BATCH", int, False),
                ("linger_seconds", "SECKILL_LINGER_SECONDS", float, True),
                ("max_deliveries", "SECKILL_MAX_DELIVERIES", int, False),
            )),
        )._checked()

    def _checked(self) -> "SeckillSettings":
        for key, value in (("SECKILL_RATE_LIMIT_MEMBER", self.rate_limit_member),
                           ("SECKILL_RATE_LIMIT_IP", self.rate_limit_ip),
                           ("SECKILL_RATE_LIMIT_WAIT", self.rate_limit_wait)):
            try:
                parse_many(value)
            except ValueError as error:
                raise ValueError(f"{key}={value!r} is not a rate limit such as '5/second' ({error})") from None
        return self

    @property
    def click_limits(self) -> ClickLimits:
        """The click's limits, which the gate counts (the limits library's syntax, e.g. ``10/second;100/minute``)."""
        def parsed(value):
            return tuple(RateLimit(item.amount, item.get_expiry()) for item in parse_many(value))
        return ClickLimits(member=parsed(self.rate_limit_member), ip=parsed(self.rate_limit_ip))


@dataclass(frozen=True)
class LifecycleSettings:
    """A payment's life after checkout: reconciliation and order expiry."""

    query_grace_seconds: float = 300.0
    reconcile_seconds: float = 60.0
    reconcile_batch: int = 100
    order_pay_timeout_seconds: float = 1800.0
    expiry_seconds: float = 60.0
    expiry_batch: int = 100

    @classmethod
    def from_settings(cls, settings: Mapping) -> "LifecycleSettings":
        return cls(**numbers(settings, cls(), (
            ("query_grace_seconds", "RECONCILE_GRACE_SECONDS", float, True),
            ("reconcile_seconds", "RECONCILE_SECONDS", float, True),
            ("reconcile_batch", "RECONCILE_BATCH", int, False),
            ("order_pay_timeout_seconds", "ORDER_PAY_TIMEOUT", float, False),
            ("expiry_seconds", "EXPIRY_SECONDS", float, True),
            ("expiry_batch", "EXPIRY_BATCH", int, False),
        )))
