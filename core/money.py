"""Money is a Decimal of yuan with two places, never a float."""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from .errors import InvalidAmount

CENT = Decimal("0.01")
MIN_AMOUNT = Decimal("0.01")
MAX_AMOUNT = Decimal("100000000.00")  # Alipay's upper bound for total_amount


def to_amount(value) -> Decimal:
    """Parse ``value`` (str, int or Decimal) into yuan, exactly; refuse floats and junk.

    Floats are refused because they cannot say 0.1 exactly; strings with more than two
    decimals are refused rather than silently rounded, since a provider that reports
    ``1.005`` is reporting something we did not ask for.
    """
    if isinstance(value, (float, bool)):
        raise InvalidAmount(f"amount must be a Decimal or a string, not {type(value).__name__}")
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise InvalidAmount(f"not an amount: {value!r}") from None
    if not amount.is_finite():
        raise InvalidAmount(f"not an amount: {value!r}")
    try:
        quantized = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation:  # too many digits for the context (>= 1e26): far out of range
        raise InvalidAmount(f"amount {value!r} outside {MIN_AMOUNT}..{MAX_AMOUNT}") from None
    if quantized != amount:
        raise InvalidAmount(f"more than two decimal places: {value!r}")
    if not MIN_AMOUNT <= quantized <= MAX_AMOUNT:
        raise InvalidAmount(f"amount {quantized} outside {MIN_AMOUNT}..{MAX_AMOUNT}")
    return quantized


def format_amount(amount: Decimal) -> str:
    """The two-decimal text providers sign and compare (``"12.30"``)."""
    return f"{amount.quantize(CENT):.2f}"


def points_for(amount: Decimal) -> int:
    """Integration (and growth) an order of ``amount`` yuan earns: one per ten whole yuan.

    The one rule for every kind of order (demo orders, flash-sale orders), so they cannot drift.
    """
    return int(amount) // 10
