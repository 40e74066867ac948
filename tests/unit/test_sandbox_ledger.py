"""The rules both sandboxes' ledgers apply (plugins/sandbox_ledger.py), on the trades of each: mockpay's
sandbox and the offline Alipay gateway answer a refund, a second checkout and a close alike."""

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from gmall_payment.plugins import sandbox_ledger as rules
from gmall_payment.plugins.alipay.gateway import Trade
from gmall_payment.plugins.mockpay.sandbox import SandboxLedger, SandboxTrade, TradeError, TradeRequest
from gmall_payment.plugins.sandbox_ledger import CLOSED, SUCCESS, WAIT, Refused

NOW = datetime(2024, 11, 11, 20, 0, 0)


def mockpay_trade(**changes):
    return replace(
        SandboxTrade("T-1", "2024111100000000000000000001", Decimal("10.00"), "手机", None, WAIT), **changes
    )


def alipay_trade(**changes):
    trade = Trade("T-1", "2024111122000000000000000001", Decimal("10.00"), "手机", None, None, NOW)
    for name, value in changes.items():
        setattr(trade, name, value)
    return trade


@pytest.fixture(params=[mockpay_trade, alipay_trade], ids=["mockpay", "alipay"])
def trade(request):
    """A trade of ten yuan waiting for its buyer, as one sandbox keeps it; ``trade(**changes)``."""
    return request.param


def refused(call) -> str:
    with pytest.raises(Refused) as error:
        call()
    return error.value.sub_code


def test_trade_states_are_alipays():
    assert (WAIT, SUCCESS, CLOSED) == ("WAIT_BUYER_PAY", "TRADE_SUCCESS", "TRADE_CLOSED")


def test_refunds_once_per_request_number_and_never_beyond_the_payment(trade):
    paid = trade(trade_status=SUCCESS, gmt_payment=NOW, refunds={"R1": Decimal("3.00")})
    assert paid.refunded == Decimal("3.00") and paid.paid

    assert rules.refunds_after(paid, Decimal("3.00"), "R1") is None  # the same refund: no money moves
    assert refused(lambda: rules.refunds_after(paid, Decimal("3.01"), "R1")) == rules.DISCORDANT
    assert refused(lambda: rules.refunds_after(paid, Decimal("7.01"), "R2")) == rules.FEE_ERR
    rest = rules.refunds_after(paid, Decimal("7.00"), "R2")
    assert rest == {"R1": Decimal("3.00"), "R2": Decimal("7.00")} and rules.fully_refunded(paid, rest)
    assert not rules.fully_refunded(paid, {"R1": Decimal("3.00")})
    assert paid.refunds == {"R1": Decimal("3.00")}  # the rules change nothing themselves


def test_only_a_paid_trade_still_open_is_refunded(trade):
    assert refused(lambda: rules.refunds_after(trade(), Decimal("1.00"), "R1")) == rules.STATUS_ERROR
    assert (
        refused(lambda: rules.refunds_after(trade(trade_status=CLOSED), Decimal("1.00"), "R1"))
        == rules.STATUS_ERROR
    )
    all_refunded = trade(trade_status=CLOSED, gmt_payment=NOW, refunds={"R1": Decimal("10.00")})
    assert refused(lambda: rules.refunds_after(all_refunded, Decimal("0.01"), "R2")) == rules.HAS_CLOSE
    assert rules.refunds_after(all_refunded, Decimal("10.00"), "R1") is None  # its repeat still answers


def test_a_refund_without_its_own_request_number_is_of_the_whole(trade):
    paid = trade(trade_status=SUCCESS, gmt_payment=NOW)
    assert (
        refused(lambda: rules.refunds_after(paid, Decimal("9.99"), "T-1", whole_only=True))
        == rules.NOT_EQUAL_TOTAL
    )
    assert rules.refunds_after(paid, Decimal("10.00"), "T-1", whole_only=True) == {"T-1": Decimal("10.00")}


def test_a_second_checkout_goes_on_only_with_the_trade_waiting_and_unchanged(trade):
    rules.check_reopen(trade(), Decimal("10.00"), "手机")
    assert (
        refused(lambda: rules.check_reopen(trade(), Decimal("10.01"), "手机")) == rules.CONTEXT_INCONSISTENT
    )
    assert (
        refused(lambda: rules.check_reopen(trade(), Decimal("10.00"), "电脑")) == rules.CONTEXT_INCONSISTENT
    )
    paid = trade(trade_status=SUCCESS, gmt_payment=NOW)
    assert refused(lambda: rules.check_reopen(paid, Decimal("10.00"), "手机")) == rules.HAS_SUCCESS
    refunded = trade(trade_status=CLOSED, gmt_payment=NOW, refunds={"R1": Decimal("10.00")})
    assert refused(lambda: rules.check_reopen(refunded, Decimal("10.00"), "手机")) == rules.HAS_SUCCESS
    closed = trade(trade_status=CLOSED)
    assert refused(lambda: rules.check_reopen(closed, Decimal("10.00"), "手机")) == rules.HAS_CLOSE


def test_only_a_waiting_trade_is_closed_on_request(trade):
    rules.check_close(trade())
    for done in (trade(trade_status=SUCCESS, gmt_payment=NOW), trade(trade_status=CLOSED)):
        assert refused(lambda done=done: rules.check_close(done)) == rules.STATUS_ERROR


def test_a_waiting_trade_expires_at_its_time_expire(trade):
    assert not trade().expired(NOW)  # no time_expire: never
    due = trade(time_expire=NOW)
    assert (
        due.expired(NOW)
        and due.expired(NOW + timedelta(seconds=1))
        and not due.expired(NOW - timedelta(seconds=1))
    )
    assert not trade(time_expire=NOW, trade_status=SUCCESS, gmt_payment=NOW).expired(NOW)  # paid in time


def test_mockpay_answers_a_refund_of_a_trade_all_refunded_as_alipay_does():
    """The one answer the fold changed: mockpay said ACQ.REASON_TRADE_REFUND_FEE_ERR here, the
    offline Alipay gateway (and Alipay) ACQ.TRADE_HAS_CLOSE; both now say the latter."""
    ledger = SandboxLedger()
    ledger.create(
        TradeRequest("T-1", Decimal("10.00"), "手机", "http://shop/notify", "http://shop/return"), NOW
    )
    ledger.pay("T-1", NOW)
    trade, moved = ledger.refund("T-1", Decimal("10.00"), "R1", NOW)
    assert moved and trade.trade_status == CLOSED
    with pytest.raises(TradeError) as error:
        ledger.refund("T-1", Decimal("0.01"), "R2", NOW)
    assert error.value.sub_code == rules.HAS_CLOSE
    assert ledger.refund("T-1", Decimal("10.00"), "R1", NOW) == (trade, False)
