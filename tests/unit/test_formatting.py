"""How pages show times, money and statuses (webapp/formatting.py)."""

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from gmall_payment.webapp import formatting


def test_a_time_is_shown_in_the_shops_zone():
    utc_noon = datetime(2024, 11, 11, 12, 0, 5, tzinfo=ZoneInfo("UTC"))
    assert formatting.local_time(utc_noon, formatting.zone("Asia/Shanghai")) == "2024-11-11 20:00:05"
    assert (
        formatting.local_time(utc_noon.isoformat(), formatting.zone("Europe/Paris"), seconds=False)
        == "2024-11-11 13:00"
    )
    assert formatting.local_time(None) == "—"


def test_a_naive_time_is_the_servers_own_clock():
    now = datetime.now()
    assert formatting.local_time(now, formatting.zone("UTC")) == now.astimezone(ZoneInfo("UTC")).strftime(
        "%Y-%m-%d %H:%M:%S"
    )


def test_an_unknown_zone_names_the_setting():
    with pytest.raises(ValueError, match="TIMEZONE"):
        formatting.zone("Mars/Olympus")


def test_money_is_exact_yuan():
    assert formatting.money(Decimal("1999")) == "¥1,999.00"
    assert formatting.money("0.10") == "¥0.10"
    assert formatting.money(None) == "—"


def test_status_names_are_chinese_first_for_pages_and_english_first_for_the_cli():
    assert formatting.status_name("refunded") == "已退款 refunded"
    assert formatting.status_name("awaiting_payment", "order") == "待付款 awaiting payment"
    assert formatting.status_label("partially_refunded") == "partially refunded (部分退款)"
    assert formatting.status_label("pending", "refund") == "pending (退款中)"
