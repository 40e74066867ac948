"""Shared fixtures of the unit tests: the in-process store, a fake provider, the services."""

import json
import threading
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from support import races

from gmall_payment.adapters.inprocess.store import InMemoryDatabase
from gmall_payment.core.errors import InvalidAmount, NotificationRejected, ProviderError
from gmall_payment.core.fulfilment import FulfilmentService
from gmall_payment.core.model import Notification, Order, OrderItem, OrderStatus, TradeStatus
from gmall_payment.core.money import to_amount
from gmall_payment.core.payments import PaymentService
from gmall_payment.core.refunds import RefundService
from gmall_payment.ports.plugins import ProviderRegistry
from gmall_payment.ports.provider import Acknowledgement, Checkout, Provider, Refund
from gmall_payment.ports.store import relayed

START = datetime(2024, 11, 11, 0, 0, 0)

#: The provider's words for a trade's state, as Alipay spells them.
TRADE_STATUSES = {
    "TRADE_SUCCESS": TradeStatus.PAID,
    "TRADE_FINISHED": TradeStatus.PAID,
    "TRADE_CLOSED": TradeStatus.CLOSED,
    "WAIT_BUYER_PAY": TradeStatus.PENDING,
}


class FakeProvider(Provider):
    """A provider whose "signature" is the parameter ``sig == "ok"``."""

    title = "Fake Pay"

    def __init__(self, name="fakepay"):
        self.name = name

    def checkout(self, payment, urls):
        return Checkout(redirect_url=f"https://{self.name}.example/pay?out_trade_no={payment.out_trade_no}")

    def parse_notification(self, params):
        if params.get("sig") != "ok":
            raise NotificationRejected("bad_signature")
        try:
            amount = to_amount(params["total_amount"])
        except InvalidAmount as error:
            raise NotificationRejected("bad_amount", str(error)) from None
        return Notification(
            out_trade_no=params["out_trade_no"],
            total_amount=amount,
            status=TRADE_STATUSES[params["trade_status"]],
            trade_no=params.get("trade_no"),
            notify_id=params.get("notify_id"),
            raw=json.dumps(dict(params), sort_keys=True),
        )

    def acknowledge(self, accepted):
        return Acknowledgement("success" if accepted else "failure")


class RefundingProvider(FakeProvider):
    """A fake provider that refunds as Alipay does: once per request number, never more than
    the trade's amount. ``failures`` are (error, after_refunding) to meet, in order: the error
    is raised before the refund, or after it was made (the answer lost on its way back)."""

    def __init__(self, name="fakepay"):
        super().__init__(name)
        self.refunds = {}  # (out_trade_no, request_no) -> Decimal
        self.calls = []
        self.failures = []

    def refunded(self, out_trade_no):
        return sum((a for (trade, _), a in self.refunds.items() if trade == out_trade_no), Decimal("0.00"))

    def refund(self, payment, amount, request_no):
        self.calls.append(request_no)
        error, after = self.failures.pop(0) if self.failures else (None, False)
        if error is not None and not after:
            raise error
        key = (payment.out_trade_no, request_no)
        repeated = key in self.refunds
        if not repeated:
            if self.refunded(payment.out_trade_no) + amount > payment.total_amount:
                raise ProviderError("退款金额无效", code="40004", sub_code="ACQ.REASON_TRADE_REFUND_FEE_ERR")
            self.refunds[key] = amount
        if error is not None:
            raise error
        return Refund(request_no, amount, self.refunded(payment.out_trade_no), not repeated, "T-REFUND")


class TickingClock:
    """A clock that moves one second each time it is read, so overwrites show."""

    def __init__(self, start=START):
        self.now = start
        self._lock = threading.Lock()

    def __call__(self):
        with self._lock:
            self.now += timedelta(seconds=1)
            return self.now


@pytest.fixture
def clock():
    return TickingClock()


@pytest.fixture
def db():
    database = InMemoryDatabase(clock=lambda: START)  # outbox times; the services get ``clock``
    database.add_member(1, "alice")
    database.add_member(2, "bob")
    database.add_sku(10, "华为 Mate 60", stock=100)
    database.add_sku(20, "小米 14", stock=50)
    return database


@pytest.fixture
def provider_class():
    """The fake provider's class, for tests that build providers of their own names."""
    return FakeProvider


@pytest.fixture
def fake():
    return FakeProvider()


@pytest.fixture
def other():
    return FakeProvider("otherpay")


@pytest.fixture
def registry(fake, other):
    return ProviderRegistry([fake, other])


@pytest.fixture
def after_commit_calls():
    """What the units of work of ``relayed_uow`` handed over as they ended: the committed outbox ids, one
    tuple per unit of work that committed events (as the relay's ``flush`` receives them)."""
    return []


@pytest.fixture
def relayed_uow(db, after_commit_calls):
    """``db``'s units of work, handing the events they commit to ``after_commit_calls``."""
    return relayed(db.unit_of_work, lambda *ids: after_commit_calls.append(ids))


@pytest.fixture
def payments(relayed_uow, registry, clock):
    return PaymentService(relayed_uow, registry, clock=clock)


@pytest.fixture
def refunding():
    """The refunding provider class, for tests whose registry refunds."""
    return RefundingProvider


@pytest.fixture
def refunds(relayed_uow, registry, clock):
    return RefundService(relayed_uow, registry, clock=clock)


@pytest.fixture
def fulfilment(db):
    return FulfilmentService(db.unit_of_work)


@pytest.fixture
def make_order(db):
    """Arrange an order (status 0, 123.45 yuan, two items, stock locks) and return its order_sn."""

    def make(
        order_sn="202411110001",
        *,
        status=OrderStatus.AWAITING_PAYMENT,
        pay_amount=Decimal("123.45"),
        member_id=1,
        integration=123,
        growth=45,
        locks=((10, 2), (20, 3)),
        items=None,
    ):
        if items is None:
            items = [
                OrderItem(10, "华为 Mate 60", 2, Decimal("45.00")),
                OrderItem(20, "小米 14", 3, Decimal("11.15")),
            ]
        db.add_order(
            Order(order_sn, member_id, status, pay_amount, integration, growth, items=list(items)),
            locks=locks,
        )
        return order_sn

    return make


@pytest.fixture
def notify_params():
    """The parameters of an authentic notification, to adjust with keyword arguments."""

    def params(
        out_trade_no="202411110001",
        total_amount="123.45",
        trade_status="TRADE_SUCCESS",
        trade_no="2024111122001400001",
        sig="ok",
    ):
        return {
            "out_trade_no": out_trade_no,
            "total_amount": total_amount,
            "trade_status": trade_status,
            "trade_no": trade_no,
            "sig": sig,
        }

    return params


@pytest.fixture
def outbox_events(db):
    """``outbox_events()``: the events in the outbox, oldest first (``unsent_only=True``: not sent yet)."""

    def events(*, unsent_only=False):
        with db.lock:
            rows = sorted(db.tables.outbox.values(), key=lambda row: row[0].id)
            return [
                message.event for message, sent_at, _ in rows if not (unsent_only and sent_at is not None)
            ]

    return events


@pytest.fixture
def stored_payments(db):
    """``stored_payments()``: every payment_info row, by id."""

    def rows():
        with db.lock:
            return sorted(db.tables.payments.values(), key=lambda p: p.id)

    return rows


@pytest.fixture
def race():
    """``race(n, work)``: ``work(i)`` in ``n`` threads released together (tests/support/races.py)."""
    return races.race
