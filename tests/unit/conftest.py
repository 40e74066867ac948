"""Shared fixtures of the unit tests: the in-process store, a fake provider, the services."""

import json
import threading
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from gmall_payment.adapters.inprocess.store import InMemoryDatabase
from gmall_payment.core.errors import InvalidAmount, NotificationRejected
from gmall_payment.core.fulfilment import FulfilmentService
from gmall_payment.core.model import Notification, Order, OrderItem, OrderStatus, TradeStatus
from gmall_payment.core.money import to_amount
from gmall_payment.core.payments import PaymentService
from gmall_payment.ports.providers import Acknowledgement, Checkout, Provider, ProviderRegistry

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
    return []


@pytest.fixture
def payments(db, registry, clock, after_commit_calls):
    return PaymentService(db.unit_of_work, registry, clock=clock,
                          after_commit=lambda *ids: after_commit_calls.append(ids))


@pytest.fixture
def fulfilment(db):
    return FulfilmentService(db.unit_of_work)


@pytest.fixture
def make_order(db):
    """Arrange an order (status 0, 123.45 yuan, two items, stock locks) and return its order_sn."""

    def make(order_sn="202411110001", *, status=OrderStatus.AWAITING_PAYMENT, pay_amount=Decimal("123.45"),
             member_id=1, integration=123, growth=45, locks=((10, 2), (20, 3)), items=None):
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

    def params(out_trade_no="202411110001", total_amount="123.45", trade_status="TRADE_SUCCESS",
               trade_no="2024111122001400001", sig="ok"):
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
            return [message.event for message, sent_at, _ in rows if not (unsent_only and sent_at is not None)]

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
    return _race


def _race(n, work):
    """Run ``work(i)`` in ``n`` threads released together; return results, re-raise errors."""
    barrier = threading.Barrier(n)
    results = [None] * n
    errors = []

    def run(i):
        try:
            barrier.wait(timeout=5)
            results[i] = work(i)
        except BaseException as error:  # handed back to the test thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads), "a racing thread hung"
    if errors:
        raise errors[0]
    return results
