"""The sandboxes' trades in the instance folder: they outlive the ledger that wrote them, come
back exact (Decimal, datetime), and many threads (and a second process's ledger) change them
without losing a refund."""

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from gmall_payment.plugins.alipay.gateway import GatewayError, Ledger
from gmall_payment.plugins.mockpay.sandbox import SandboxLedger, TradeError, TradeRequest

NOW = datetime(2024, 11, 11, 20, 0, 0, 123456)


def opened(ledger, out_trade_no="T-1", amount="100.00"):
    return ledger.create(
        TradeRequest(
            out_trade_no,
            Decimal(amount),
            "谷粒商城-手机",
            "http://shop/notify",
            "http://shop/return",
            NOW + timedelta(minutes=30),
        ),
        NOW,
    )


def test_mockpay_trades_outlive_their_ledger_exactly(tmp_path):
    path = tmp_path / "mockpay" / "trades.sqlite3"
    opened(SandboxLedger(path), amount="0.10")
    SandboxLedger(path).pay("T-1", NOW)
    SandboxLedger(path).refund("T-1", Decimal("0.03"), "R-1", NOW)

    trade = SandboxLedger(path).trade("T-1")  # a new process would see this
    assert (trade.total_amount, trade.refunds, trade.refunded) == (
        Decimal("0.10"),
        {"R-1": Decimal("0.03")},
        Decimal("0.03"),
    )
    assert isinstance(trade.total_amount, Decimal) and trade.gmt_payment == NOW
    assert trade.time_expire == NOW + timedelta(minutes=30)


def test_a_refused_change_changes_nothing_but_an_expiry_close_is_kept(tmp_path):
    path = tmp_path / "trades.sqlite3"
    ledger = SandboxLedger(path)
    opened(ledger)
    with pytest.raises(TradeError, match="REFUND_FEE_ERR|TRADE_STATUS_ERROR"):
        ledger.refund("T-1", Decimal("1.00"), "R-1", NOW)  # not paid
    assert SandboxLedger(path).trade("T-1").refunds == {}
    with pytest.raises(TradeError, match="time_expire"):
        ledger.pay("T-1", NOW + timedelta(hours=1))
    assert SandboxLedger(path).trade("T-1").trade_status == "TRADE_CLOSED"  # as Alipay closes it


def test_refunds_racing_in_threads_of_two_ledgers_never_exceed_the_payment(tmp_path):
    path = tmp_path / "trades.sqlite3"
    ledgers = [SandboxLedger(path), SandboxLedger(path)]  # as the server's and the CLI's
    opened(ledgers[0])
    ledgers[1].pay("T-1", NOW)

    def refund(index):
        try:
            return ledgers[index % 2].refund("T-1", Decimal("7.00"), f"R-{index}", NOW)[1]
        except TradeError:
            return False

    with ThreadPoolExecutor(8) as pool:
        moved = list(pool.map(refund, range(40)))

    assert moved.count(True) == 14  # 14 × 7.00 = 98.00 <= 100.00 < 15 × 7.00
    assert SandboxLedger(path).trade("T-1").refunded == Decimal("98.00")


def test_the_alipay_gateways_trades_outlive_it(tmp_path):
    path = tmp_path / "alipay" / "gateway_trades.sqlite3"
    trade = Ledger(path).open("A-1", Decimal("12.30"), "谷粒商城", "http://shop/notify", None, NOW)
    Ledger(path).pay("A-1", NOW, body="赠品")
    with Ledger(path).change("A-1") as changing:
        changing.refunds["R-1"] = Decimal("2.30")

    again = Ledger(path).get(trade_no=trade.trade_no)
    assert (again.out_trade_no, again.trade_status, again.body) == ("A-1", "TRADE_SUCCESS", "赠品")
    assert again.refunded == Decimal("2.30") and again.gmt_payment == NOW
    with pytest.raises(GatewayError, match="TRADE_NOT_EXIST"):
        Ledger(path).pay("NOPE", NOW)
