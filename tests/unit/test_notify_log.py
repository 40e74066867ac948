"""The notify log: every notification is kept with its verdict; duplicates, replay, confirm-by-query."""

from dataclasses import replace
from decimal import Decimal

import pytest

from gmall_payment.core.errors import NotificationRejected, ProviderError
from gmall_payment.core.model import Notification, PaymentStatus, TradeStatus
from gmall_payment.core.payments import PaymentService
from gmall_payment.ports.plugins import ProviderRegistry


@pytest.fixture
def payment(payments, make_order):
    return payments.start(make_order(), "fakepay")


def log(db):
    with db.lock:
        return sorted(db.tables.notifications.values(), key=lambda r: r.id)


def test_an_accepted_notification_is_logged_with_its_raw_body(payments, payment, notify_params, db, clock):
    params = {**notify_params(), "notify_id": "N-1"}
    result = payments.handle_notification("fakepay", params, raw="the body as posted")

    [record] = log(db)
    assert result.record_id == record.id
    assert (record.provider, record.notify_id, record.out_trade_no) == (
        "fakepay",
        "N-1",
        payment.out_trade_no,
    )
    assert (record.verified, record.accepted, record.outcome) == (True, True, "paid")
    assert record.raw == "the body as posted"
    assert record.received_at < clock.now  # read before the payment's callback_time


def test_without_a_raw_body_the_params_are_kept_url_encoded(payments, payment, notify_params, db):
    payments.handle_notification("fakepay", {**notify_params(), "subject": "a&b=c 手机"})
    assert "subject=a%26b%3Dc+%E6%89%8B%E6%9C%BA" in log(db)[0].raw


@pytest.mark.parametrize(
    ("changes", "verified", "outcome"),
    [
        ({"sig": "forged"}, False, "bad_signature"),
        ({"total_amount": "0.01"}, True, "amount_mismatch"),
        ({"out_trade_no": "nope"}, True, "unknown_trade"),
    ],
)
def test_a_rejected_notification_is_logged_and_changes_nothing_else(
    payments, payment, notify_params, db, stored_payments, outbox_events, changes, verified, outcome
):
    result = payments.handle_notification("fakepay", {**notify_params(), "notify_id": "N-2", **changes})

    assert (result.accepted, result.body) == (False, "failure")
    [record] = log(db)
    assert (record.verified, record.accepted, record.outcome, record.notify_id) == (
        verified,
        False,
        outcome,
        "N-2",
    )
    assert result.record_id == record.id
    assert stored_payments()[0].payment_status == PaymentStatus.UNPAID
    assert outbox_events() == []


def test_a_notify_id_already_accepted_is_a_duplicate(payments, payment, notify_params, db, stored_payments):
    """WAIT_BUYER_PAY changes no status, so only the notify_id can tell the second copy apart."""
    params = {**notify_params(trade_status="WAIT_BUYER_PAY"), "notify_id": "N-3"}
    first = payments.handle_notification("fakepay", params)
    again = payments.handle_notification("fakepay", params)
    other = payments.handle_notification("fakepay", {**params, "notify_id": "N-4"})

    assert (first.outcome, again.outcome, other.outcome) == ("recorded", "duplicate", "recorded")
    assert again.body == "success"
    assert [r.outcome for r in log(db)] == ["recorded", "duplicate", "recorded"]
    assert stored_payments()[0].payment_status == PaymentStatus.UNPAID


def test_only_a_notification_that_moves_nothing_looks_its_notify_id_up(
    payments, payment, notify_params, db, monkeypatch
):
    """The copy that pays the payment needs no notify-log read (an accepted copy would have
    paid it already): the hot path saves a query; its copy is still found a duplicate."""
    view = type(db.unit_of_work().notifications)
    looked_up = []
    accepted = view.accepted
    monkeypatch.setattr(view, "accepted", lambda self, *key: looked_up.append(key) or accepted(self, *key))
    params = {**notify_params(), "notify_id": "N-7"}

    first = payments.handle_notification("fakepay", params)
    assert (first.outcome, looked_up) == ("paid", [])
    again = payments.handle_notification("fakepay", params)
    assert (again.outcome, looked_up) == ("duplicate", [("fakepay", "N-7")])


def test_a_rejected_notify_id_is_not_a_duplicate(payments, payment, notify_params):
    params = {**notify_params(), "notify_id": "N-5"}
    assert payments.handle_notification("fakepay", {**params, "sig": "forged"}).accepted is False
    assert payments.handle_notification("fakepay", params).outcome == "paid"


def test_replay_handles_the_logged_body_again(payments, make_order, notify_params, db, stored_payments):
    """A notify that arrived before its payment existed is refused; replayed later, it pays."""
    early = payments.handle_notification("fakepay", {**notify_params(), "notify_id": "N-6"})
    assert early.outcome == "unknown_trade"
    payments.start(make_order(), "fakepay")

    replayed = payments.replay(early.record_id)

    assert (replayed.accepted, replayed.outcome) == (True, "paid")
    assert stored_payments()[0].payment_status == PaymentStatus.PAID
    first, second = log(db)
    assert (second.replay_of, second.raw, second.notify_id) == (first.id, first.raw, "N-6")
    assert payments.replay(second.id).outcome == "duplicate"
    with pytest.raises(LookupError):
        payments.replay(999)


def test_recent_is_newest_first_and_by_provider(payments, payment, notify_params):
    for n in range(3):
        payments.handle_notification("fakepay", {**notify_params(), "notify_id": f"F{n}"})
    payments.handle_notification("otherpay", {**notify_params(), "notify_id": "O0"})

    assert [r.notify_id for r in payments.notifications()] == ["O0", "F2", "F1", "F0"]
    assert [r.notify_id for r in payments.notifications(2, "fakepay")] == ["F2", "F1"]
    assert payments.notification(payments.notifications(1)[0].id).notify_id == "O0"


class Answers:
    """What the confirming provider's query answers, and how often it was asked."""

    def __init__(self):
        self.calls = []
        self.answer = None

    def __call__(self, payment):
        self.calls.append(payment.out_trade_no)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.fixture
def confirming(db, provider_class, clock, make_order):
    provider = provider_class("confirmpay")
    provider.confirm_paid_by_query = True
    provider.query = Answers()
    service = PaymentService(db.unit_of_work, ProviderRegistry([provider]), clock=clock)
    service.start(make_order(), "confirmpay")
    return service, provider.query


def paid_answer(**changes):
    answer = Notification("202411110001", Decimal("123.45"), TradeStatus.PAID, trade_no="2024111122001400001")
    return replace(answer, **changes)


def test_confirm_by_query_marks_paid_when_the_provider_agrees(confirming, notify_params, stored_payments):
    service, query = confirming
    query.answer = paid_answer()
    result = service.handle_notification("confirmpay", notify_params())
    assert (result.accepted, result.outcome) == (True, "paid")
    assert query.calls == ["202411110001"]
    assert stored_payments()[0].payment_status == PaymentStatus.PAID

    again = service.handle_notification("confirmpay", notify_params())
    assert again.outcome == "duplicate" and query.calls == ["202411110001"]  # settled: not asked again


@pytest.mark.parametrize(
    "answer",
    [
        paid_answer(status=TradeStatus.PENDING),
        paid_answer(total_amount=Decimal("0.01")),
        paid_answer(trade_no="ANOTHER"),
        ProviderError("unreachable"),
        ProviderError("交易不存在", "40004", "ACQ.TRADE_NOT_EXIST"),
    ],
)
def test_confirm_by_query_refuses_what_the_provider_does_not_confirm(
    confirming, notify_params, stored_payments, outbox_events, db, answer
):
    service, query = confirming
    query.answer = answer
    result = service.handle_notification("confirmpay", notify_params())
    assert (result.accepted, result.outcome, result.body) == (False, "not_confirmed", "failure")
    assert stored_payments()[0].payment_status == PaymentStatus.UNPAID
    assert outbox_events() == []
    assert log(db)[-1].verified is True


def test_confirm_by_query_is_only_for_paid_notifications(confirming, notify_params):
    service, query = confirming
    assert (
        service.handle_notification("confirmpay", notify_params(trade_status="TRADE_CLOSED")).outcome
        == "closed"
    )
    assert query.calls == []


class HeaderSigningProvider:
    """A fake provider that signs a header (``X-Sig: ok``) and refuses an old one (``X-Age``)
    unless replayed, as WeChat Pay's notifications are: the calls it was asked to parse."""

    def __init__(self, provider_class):
        outer = self

        class Signed(provider_class):
            notification_headers = ("X-Sig", "X-Age")
            payment_code = 7

            def parse_notification_request(self, params, body, headers):
                outer.calls.append(("received", dict(headers)))
                return self._check(params, headers, window=True)

            def parse_replayed_notification(self, params, body, headers):
                outer.calls.append(("replayed", dict(headers)))
                return self._check(params, headers, window=False)

            def _check(self, params, headers, window):
                headers = {name.lower(): value for name, value in headers.items()}  # HTTP's: any case
                if headers.get("x-sig") != "ok":
                    raise NotificationRejected("bad_signature")
                if window and headers.get("x-age") == "old":
                    raise NotificationRejected("stale_timestamp")
                return self.parse_notification({**params, "sig": "ok"})

        self.calls = []
        self.provider = Signed("signedpay")


def test_a_provider_s_signed_headers_are_kept_and_a_replay_verifies_them_without_the_age_check(
    db, clock, make_order, notify_params, stored_payments, provider_class
):
    signed = HeaderSigningProvider(provider_class)
    payments = PaymentService(db.unit_of_work, ProviderRegistry([signed.provider]), clock=clock)
    params = {**notify_params(sig="-"), "notify_id": "N-H"}
    received = payments.handle_notification(
        "signedpay",
        params,
        headers={"x-sig": "ok", "X-AGE": "old", "Cookie": "not kept", "X-Long": "y" * 5000},
    )
    assert received.outcome == "stale_timestamp"
    payment = payments.start(make_order(), "signedpay")
    assert payment.payment_type_code == 7  # the provider's payment_code, on the new payment

    replayed = payments.replay(received.record_id)

    assert (replayed.accepted, replayed.outcome) == (True, "paid")
    first, second = log(db)
    assert first.headers == second.headers == '{"X-Age": "old", "X-Sig": "ok"}'  # named ones only, as named
    assert signed.calls[-1] == ("replayed", {"X-Age": "old", "X-Sig": "ok"})
    assert stored_payments()[0].payment_status == PaymentStatus.PAID


def test_a_kept_header_is_cut_and_a_provider_that_signs_none_keeps_none(
    db, clock, payments, payment, notify_params, provider_class
):
    payments.handle_notification("fakepay", notify_params(), headers={"X-Sig": "ok"})
    signed = HeaderSigningProvider(provider_class)
    PaymentService(db.unit_of_work, ProviderRegistry([signed.provider]), clock=clock).handle_notification(
        "signedpay", notify_params(), headers={"X-Sig": "s" * 5000}
    )
    plain, cut = log(db)
    assert plain.headers is None
    assert len(cut.headers) < 2100 and cut.outcome == "bad_signature"
