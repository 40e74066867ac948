from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from gmall_payment.core.errors import InvalidAmount
from gmall_payment.core.seckill import InvalidSale, Sale

START = datetime(2024, 11, 11, 20, 0)
END = START + timedelta(hours=1)


def test_a_sale_keeps_its_price_in_cents_and_one_unit_per_member():
    sale = Sale(1001, "华为 Mate 60 秒杀", "4999", 100, START, END)
    assert sale.price == Decimal("4999.00") and str(sale.price) == "4999.00"
    assert sale.limit_per_member == 1


@pytest.mark.parametrize(
    "fields, error",
    [
        ({"price": 4999.0}, InvalidAmount),
        ({"price": "0.001"}, InvalidAmount),
        ({"units": 0}, InvalidSale),
        ({"title": " "}, InvalidSale),
        ({"end": START}, InvalidSale),
    ],
)
def test_an_impossible_sale_is_refused(fields, error):
    values = {
        "sku_id": 1001,
        "title": "秒杀",
        "price": "1.00",
        "units": 1,
        "start": START,
        "end": END,
        **fields,
    }
    with pytest.raises(error):
        Sale(**values)
