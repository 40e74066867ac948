"""Money: exact Decimal yuan, two places, within Alipay's bounds; floats and junk refused."""

from decimal import Decimal

import pytest

from gmall_payment.core.errors import DomainError, InvalidAmount
from gmall_payment.core.money import MAX_AMOUNT, MIN_AMOUNT, format_amount, points_for, to_amount


@pytest.mark.parametrize(
    "value, expected",
    [
        ("0.01", Decimal("0.01")),
        ("100000000.00", Decimal("100000000.00")),
        ("123.45", Decimal("123.45")),
        (" 12.3 ", Decimal("12.30")),
        ("123.450", Decimal("123.45")),
        (Decimal("123.45"), Decimal("123.45")),
        (Decimal("123.4500"), Decimal("123.45")),  # DECIMAL(18,4) as the database returns it
        (7, Decimal("7.00")),
        (100000000, Decimal("100000000.00")),
    ],
)
def test_to_amount_accepts_exact_yuan(value, expected):
    amount = to_amount(value)
    assert isinstance(amount, Decimal)
    assert amount == expected
    assert amount.as_tuple().exponent == -2  # always exactly two places


def test_bounds_are_alipays():
    bounds = (MIN_AMOUNT, MAX_AMOUNT)
    assert bounds == (Decimal("0.01"), Decimal("100000000.00"))


@pytest.mark.parametrize(
    "value",
    [
        0.01,  # float: cannot say 0.1 exactly
        123.45,
        True,  # bool is an int, but never an amount
        False,
        "0.00",
        "0",
        0,
        "-0.01",
        "100000000.01",
        "1.005",  # more than two places: refused, not rounded
        "0.001",
        "abc",
        "",
        "NaN",
        "sNaN",
        "Infinity",
        "-Infinity",
        None,
        "1e400",  # quantize overflows the decimal context: must still be InvalidAmount
        "1e26",
        10**30,
    ],
)
def test_to_amount_refuses(value):
    with pytest.raises(InvalidAmount):
        to_amount(value)


def test_invalid_amount_is_a_domain_error():
    assert issubclass(InvalidAmount, DomainError)


@pytest.mark.parametrize(
    "amount, text",
    [
        (Decimal("12.3"), "12.30"),
        (Decimal("0.01"), "0.01"),
        (Decimal("7"), "7.00"),
        (Decimal("123.4500"), "123.45"),
        (Decimal("100000000"), "100000000.00"),
    ],
)
def test_format_amount_gives_two_places(amount, text):
    assert format_amount(amount) == text


def test_format_amount_round_trips_through_to_amount():
    assert format_amount(to_amount("99.9")) == "99.90"
    assert to_amount(format_amount(Decimal("5"))) == Decimal("5.00")


@pytest.mark.parametrize(
    ("amount", "points"), [("0.01", 0), ("9.99", 0), ("10.00", 1), ("6999.00", 699), ("19.90", 1)]
)
def test_an_order_earns_a_point_per_ten_whole_yuan(amount, points):
    assert points_for(Decimal(amount)) == points
