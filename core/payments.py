"""Starting payments and handling providers' notifications."""

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlencode

from . import events, logfields
from .errors import (
    DomainError,
    NotificationRejected,
    OrderNotFound,
    OrderNotPayable,
    PaymentNotFound,
    TransactionConflict,
)
from .model import (
    DEAD_ORDER_STATUSES,
    MONEY_TAKEN,
    Notification,
    NotificationRecord,
    Order,
    OrderStatus,
    Payment,
    PaymentStatus,
    RefundReason,
    TradeStatus,
)
from .money import to_amount
from .truncation import truncated

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NotificationResult:
    """What became of a notification; ``body`` is what the provider must read back."""

    accepted: bool
    #: "paid", "closed", "duplicate", "recorded", "refunded" (a trade closed after its refund),
    #: "paid_after_close", "paid_twice" (paid, and owed back), "second_trade", or the rejection reason
    outcome: str
    body: str
    content_type: str
    status: int
    payment: Payment | None = None
    detail: str = ""
    record_id: int | None = None  # the notify log's entry


class PaymentService:
    """Payments of orders through any enabled provider.

    ``uow`` builds a unit of work (see ``ports.store.UnitOfWork``); ``providers`` is a
    ``ports.plugins.ProviderRegistry``; ``clock`` returns the current time (the events a
    unit of work writes leave with its commit: the outbox relay sends them at once);
    ``query_grace`` is how long after it starts a payment
    still unpaid is first asked about (``core.reconciliation``); ``pay_deadline(order)`` is
    when the order closes unpaid (None: never), told to the provider at checkout.
    ``refund_notices(payment, notice)`` applies a notification about a refund and says
    (outcome, detail) (``RefundService.apply_notice``; unset: such notifications are recorded).
    """

    refund_notices: Callable | None = None

    def __init__(
        self,
        uow: Callable,
        providers,
        clock: Callable[[], datetime] = datetime.now,
        query_grace: timedelta = timedelta(minutes=5),
        pay_deadline: Callable[[Order], datetime | None] = lambda order: None,
    ):
        self.uow = uow
        self.providers = providers
        self.clock = clock
        self.query_grace = query_grace
        self.pay_deadline = pay_deadline

    def start(self, order_sn: str, provider_name: str) -> Payment:
        """The payment of this order with this provider, made once however often asked."""
        return self._start(order_sn, provider_name)[0]

    def _start(self, order_sn: str, provider_name: str) -> tuple[Payment, Order]:
        provider = self.providers.get(provider_name)
        with self.uow() as uow:
            order = uow.orders.get(order_sn)
            if order is None:
                raise OrderNotFound(order_sn)
            if order.status != OrderStatus.AWAITING_PAYMENT:
                raise OrderNotPayable(order_sn)
            payments = uow.payments.for_order(order_sn)
            if any(p.payment_status in MONEY_TAKEN for p in payments):
                raise OrderNotPayable(order_sn)  # paid already, fulfilment not yet through
            payment = next((p for p in payments if p.payment_type == provider_name), None)
            if payment is None:
                now = self.clock()
                payment = uow.payments.add_once(
                    Payment(
                        order_sn=order_sn,
                        payment_type=provider_name,
                        total_amount=to_amount(order.pay_amount),
                        subject=order.subject,
                        create_time=now,
                        next_query_time=now + self.query_grace,
                        payment_type_code=provider.payment_code,
                    )
                )
                uow.commit()
        if payment.payment_status != PaymentStatus.UNPAID:
            raise OrderNotPayable(order_sn)
        return payment, order

    def checkout(self, order_sn: str, provider_name: str, urls):
        """Start (or resume) the payment and ask the provider how to send the shopper there,
        telling it when the order closes (``urls.expires_at``), so that it takes no money after."""
        payment, order = self._start(order_sn, provider_name)
        urls = replace(urls, expires_at=self.pay_deadline(order))
        return self.providers.get(provider_name).checkout(payment, urls)

    @logfields.scoped
    def handle_notification(
        self,
        provider_name: str,
        params: Mapping[str, str],
        raw: str | None = None,
        replay_of: int | None = None,
        keep_refused: Callable[[], bool] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> NotificationResult:
        """Verify, check and apply a provider's asynchronous notification, and log it.

        A rejection changes nothing but the notify log and says why; an authentic copy of a
        notification we already applied (same ``notify_id``, or a payment already in the
        state it reports) is acknowledged so that the provider stops retrying. ``raw`` is the
        body as posted (kept for operators; ``params`` url-encoded when not given); ``headers``
        the request's, for providers that sign them (``parse_notification_request``).
        ``keep_refused``, asked once per rejection, may say False: the rejection is answered
        but not logged (the web side bounds what strangers can make us keep).
        """
        provider = self.providers.get(provider_name)
        entry = NotificationRecord(
            provider=provider_name,
            received_at=self.clock(),
            raw=urlencode(list(params.items())) if raw is None else raw,
            verified=False,
            accepted=False,
            outcome="",
            notify_id=_text(params.get("notify_id")),
            out_trade_no=_text(params.get("out_trade_no")),
            replay_of=replay_of,
            headers=_kept_headers(provider.notification_headers, headers or {}),
        )
        # A replay is an operator's deliberate act on a notification verified or refused when it
        # came: its signature is checked again, its age no longer (parse_replayed_notification).
        parse = (
            provider.parse_notification_request if replay_of is None else provider.parse_replayed_notification
        )
        try:
            notification = parse(params, entry.raw, headers or {})
            entry = replace(
                entry,
                verified=True,
                notify_id=notification.notify_id or entry.notify_id,
                out_trade_no=notification.out_trade_no,
            )
            if notification.refund is not None:
                outcome, payment, entry = self._refund_notice(provider_name, notification, entry)
            else:
                self._confirm_by_query(provider, notification)
                outcome, payment, entry = _through_conflicts(
                    lambda: self._apply(provider_name, notification, entry)
                )
        except NotificationRejected as rejected:
            if keep_refused is None or keep_refused():
                log.warning("%s notification rejected: %s", provider_name, rejected)
                entry = self._log_rejection(entry, rejected)
            ack = provider.acknowledge(False)
            return NotificationResult(
                False,
                rejected.reason,
                ack.body,
                ack.content_type,
                ack.status,
                detail=rejected.detail,
                record_id=entry.id,
            )
        ack = provider.acknowledge(True)
        log.info("%s notification for %s: %s", provider_name, notification.out_trade_no, outcome)
        return NotificationResult(
            True,
            outcome,
            ack.body,
            ack.content_type,
            ack.status,
            payment,
            detail=entry.detail,
            record_id=entry.id,
        )

    def replay(self, record_id: int) -> NotificationResult:
        """Handle a logged notification again, from its raw body and the signed headers kept
        with it (an operator's retry): verified again, but not refused for its age."""
        with self.uow() as uow:
            record = uow.notifications.get(record_id)
        if record is None:
            raise LookupError(f"no notification #{record_id}")
        if truncated(record.raw):
            raise LookupError(
                f"notification #{record_id} was kept truncated: its body cannot be handled again"
            )
        params = {}
        for key, value in parse_qsl(record.raw, keep_blank_values=True):
            params.setdefault(key, value)  # the first of repeated fields, as the web form reads them
        headers = json.loads(record.headers) if record.headers else {}
        return self.handle_notification(
            record.provider, params, raw=record.raw, replay_of=record.id, headers=headers
        )

    def flag(self, payment_id: int, flag: str) -> None:
        """Ask an operator to look at the payment (what the shop could not settle by itself)."""
        with self.uow() as uow:
            log.warning("payment #%s flagged: %s", payment_id, flag)
            uow.payments.set_flag(payment_id, flag)
            uow.commit()

    def unflag(self, payment_id: int, prefix: str) -> None:
        """Clear the payment's flag if it is one the shop set itself (starting with ``prefix``) and
        it no longer holds; an operator's, or another's, stays."""
        with self.uow() as uow:
            payment = uow.payments.get(payment_id)
            if payment is not None and payment.flag and payment.flag.startswith(prefix):
                uow.payments.set_flag(payment_id, None)
                uow.commit()

    def clear_flag(self, payment_id: int) -> Payment:
        """An operator handled what the payment was flagged for; the payment as it is now."""
        with self.uow() as uow:
            payment = uow.payments.get(payment_id)
            if payment is None:
                raise PaymentNotFound(payment_id)
            if payment.flag is not None:
                log.info("payment #%s: flag cleared by an operator (was: %s)", payment_id, payment.flag)
                uow.payments.set_flag(payment_id, None)
                uow.commit()
            return replace(payment, flag=None)

    def notifications(self, limit: int = 50, provider: str | None = None) -> list[NotificationRecord]:
        """The latest logged notifications, newest first."""
        with self.uow() as uow:
            return uow.notifications.recent(limit, provider)

    def notification(self, record_id: int) -> NotificationRecord | None:
        with self.uow() as uow:
            return uow.notifications.get(record_id)

    def _log_rejection(self, entry: NotificationRecord, rejected: NotificationRejected) -> NotificationRecord:
        """Log a refused notification in a unit of work of its own (the refused one rolled back)."""
        # Providers check the signature first and call a bad one "bad_signature": any other
        # reason means the signature held.
        entry = replace(
            entry,
            outcome=rejected.reason,
            detail=rejected.detail,
            verified=rejected.reason != "bad_signature",
        )
        with self.uow() as uow:
            entry = uow.notifications.add(entry)
            uow.commit()
        return entry

    def _confirm_by_query(self, provider, notification: Notification) -> None:
        """For providers set to confirm: a "paid" notification must match the provider's own answer.

        The query runs outside any transaction (it is a network call); it is skipped when the
        payment is unknown or already settled, which ``_apply`` then handles as usual.
        """
        if not provider.confirm_paid_by_query or notification.status != TradeStatus.PAID:
            return
        with self.uow() as uow:
            payment = uow.payments.by_trade(provider.name, notification.out_trade_no)
            if notification.notify_id and uow.notifications.accepted(provider.name, notification.notify_id):
                return
        if payment is None or payment.payment_status not in (PaymentStatus.UNPAID, PaymentStatus.CLOSED):
            return
        try:
            answer = provider.query(payment)
        except DomainError as error:
            raise NotificationRejected("not_confirmed", f"query failed: {error}") from None
        if (answer.status, answer.total_amount, answer.out_trade_no) != (
            TradeStatus.PAID,
            notification.total_amount,
            notification.out_trade_no,
        ) or (notification.trade_no and answer.trade_no and answer.trade_no != notification.trade_no):
            raise NotificationRejected(
                "not_confirmed",
                f"query says {answer.status.value} {answer.total_amount} trade {answer.trade_no}",
            )

    @logfields.scoped
    def apply_answer(self, provider_name: str, notification: Notification, source: str) -> NotificationResult:
        """A provider's answer to a request of ours (``source``: "query", "close") takes the
        notification's path: the same checks, the same transition and event, in the notify log.

        ``body``, ``content_type`` and ``status`` are empty: there is no provider to answer.
        """
        entry = NotificationRecord(
            provider=provider_name,
            received_at=self.clock(),
            raw=notification.raw,
            verified=True,
            accepted=False,
            outcome="",
            out_trade_no=_text(notification.out_trade_no),
            source=source,
        )
        try:
            outcome, payment, entry = self._apply(provider_name, notification, entry)
        except NotificationRejected as rejected:
            log.warning(
                "%s %s answer for %s rejected: %s", provider_name, source, notification.out_trade_no, rejected
            )
            entry = self._log_rejection(entry, rejected)
            return NotificationResult(
                False, rejected.reason, "", "", 0, detail=rejected.detail, record_id=entry.id
            )
        log.info("%s %s answer for %s: %s", provider_name, source, notification.out_trade_no, outcome)
        return NotificationResult(True, outcome, "", "", 0, payment, detail=entry.detail, record_id=entry.id)

    def record_answer(
        self,
        payment: Payment,
        source: str,
        outcome: str,
        detail: str = "",
        raw: str = "",
        accepted: bool = True,
    ) -> NotificationRecord:
        """Log an answer that changes nothing (a trade the provider does not know, a failed
        request) beside the notifications, so operators see every word the provider said."""
        entry = NotificationRecord(
            provider=payment.payment_type,
            received_at=self.clock(),
            raw=raw or detail,
            verified=True,
            accepted=accepted,
            outcome=outcome,
            out_trade_no=_text(payment.out_trade_no),
            detail=detail,
            source=source,
        )
        with self.uow() as uow:
            entry = uow.notifications.add(entry)
            uow.commit()
        return entry

    def _apply(self, provider_name: str, notification: Notification, entry: NotificationRecord):
        """Apply an authentic notification: (outcome, payment, log entry)."""
        with self.uow() as uow:
            payment = uow.payments.by_trade(provider_name, notification.out_trade_no)
            if (
                notification.notify_id
                and not _moves(payment, notification)
                and uow.notifications.accepted(provider_name, notification.notify_id)
            ):
                return "duplicate", payment, self._log(uow, entry, "duplicate")
            payment = _ours(payment, notification)
            if notification.status == TradeStatus.PAID:
                outcome, detail, after = self._paid(uow, payment, notification)
            elif notification.status == TradeStatus.CLOSED:
                outcome, detail, after = self._closed(uow, payment, notification)
            else:
                outcome, detail, after = "recorded", "", payment
            payment = after or uow.payments.get(payment.id)
            entry = self._log(uow, replace(entry, detail=detail) if detail else entry, outcome)
            return outcome, payment, entry

    def _refund_notice(self, provider_name: str, notification: Notification, entry: NotificationRecord):
        """A notification about a refund: the trade ours, then the refund settled by its own service."""
        with self.uow() as uow:
            payment = uow.payments.by_trade(provider_name, notification.out_trade_no)
            if notification.notify_id and uow.notifications.accepted(provider_name, notification.notify_id):
                return "duplicate", payment, self._log(uow, entry, "duplicate")
        _ours(payment, notification)
        outcome, detail = (
            ("recorded", "")
            if self.refund_notices is None
            else self.refund_notices(payment, notification.refund)
        )
        with self.uow() as uow:
            entry = self._log(uow, replace(entry, detail=detail) if detail else entry, outcome)
            return outcome, uow.payments.get(payment.id), entry

    def _paid(self, uow, payment: Payment, notification: Notification):
        """The provider took the money: (outcome, detail, the payment now if known without
        reading it back, else None).

        The first payment to be paid for an open order pays it (``payment.succeeded``); one paid
        for an order already closed, or already paid by another payment, is owed back
        (``payment.refund_due``), decided in this transaction so that nothing slips between.
        """
        if payment.payment_status in MONEY_TAKEN:
            if notification.trade_no and payment.trade_no and notification.trade_no != payment.trade_no:
                flag = (
                    f"{payment.payment_type} reports a second trade {notification.trade_no} paid for "
                    f"{payment.out_trade_no} (this payment's trade is {payment.trade_no}): check it with "
                    "the provider and refund it by hand"
                )
                uow.payments.set_flag(payment.id, flag)
                return "second_trade", flag, None
            return "duplicate", "", payment
        paid = self._move(uow, payment, PaymentStatus.PAID, notification)
        if paid is None:  # another copy won the race
            return "duplicate", "", None
        order_status = uow.orders.status(payment.order_sn)
        if order_status in DEAD_ORDER_STATUSES:
            reason = RefundReason.PAID_AFTER_CLOSE
            detail = f"order {payment.order_sn} is {order_status.name}: the money goes back"
        elif not uow.payments.settle_order(payment.order_sn, payment.id):
            reason = RefundReason.PAID_TWICE
            detail = (
                f"order {payment.order_sn} was paid already (payment "
                f"#{uow.payments.settled_by(payment.order_sn)}): the money goes back"
            )
        else:
            event = events.payment_succeeded(
                payment.order_sn, payment.payment_type, notification.trade_no, payment.total_amount
            )
            uow.outbox.add(event)
            return "paid", "", paid
        uow.payments.mark_owed(payment.id, reason)
        log.warning("payment #%s (%s %s): %s", payment.id, payment.payment_type, payment.out_trade_no, detail)
        event = events.refund_due(payment.order_sn, payment.id, reason, payment.total_amount)
        uow.outbox.add(event)
        return reason, detail, None

    def _closed(self, uow, payment: Payment, notification: Notification):
        """The provider closed the trade: (outcome, detail, the payment now if known, else None).

        Unpaid, the payment closes. Paid, the trade closed because all of it was refunded
        (Alipay sends TRADE_CLOSED after a full refund): "refunded", the refunds recorded here
        make the payment's status; if they do not cover the amount, an operator is told.
        """
        status = payment.payment_status
        if status == PaymentStatus.CLOSED:
            return "duplicate", "", payment
        if status == PaymentStatus.UNPAID:
            closed = self._move(uow, payment, PaymentStatus.CLOSED, notification)
            return ("duplicate", "", None) if closed is None else ("closed", "", closed)
        if payment.refund_reserved < payment.total_amount:
            flag = (
                f"{payment.payment_type} says trade {payment.out_trade_no} is closed (fully refunded), but "
                f"only {payment.refund_reserved} of {payment.total_amount} is refunded or being refunded "
                "here: was it refunded outside the shop?"
            )
            uow.payments.set_flag(payment.id, flag)
            return "refunded", flag, None
        return "refunded", "", payment

    def _move(self, uow, payment: Payment, to: PaymentStatus, notification: Notification) -> Payment | None:
        """Move the payment as the notification says, keeping its trade number and its body:
        the payment moved, or None if another transaction moved it first."""
        return uow.payments.moved(
            payment,
            to,
            trade_no=notification.trade_no,
            callback_time=notification.paid_at or self.clock(),
            callback_content=notification.raw or json.dumps({"out_trade_no": notification.out_trade_no}),
        )

    @staticmethod
    def _log(uow, entry: NotificationRecord, outcome: str) -> NotificationRecord:
        """Log an accepted notification and commit it with whatever the unit of work changed."""
        entry = uow.notifications.add(replace(entry, accepted=True, outcome=outcome))
        uow.commit()
        return entry


#: How often a notification's transaction runs before a conflict is left to the provider's retry.
CONFLICT_ATTEMPTS = 3


def _through_conflicts(work: Callable):
    """``work()``, run again while the database aborts its transaction to end a conflict with
    another (the suite saw a notification's payment update chosen as a deadlock's victim, among
    concurrent notifications just after MariaDB restarted): nothing of an aborted run happened,
    and answering the provider "try again" for it would delay the payment by its retry series."""
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            return work()
        except TransactionConflict as conflict:
            if attempt == CONFLICT_ATTEMPTS:
                raise
            log.warning("transaction aborted (%s): running it again (attempt %s)", conflict, attempt + 1)


def _moves(payment: Payment | None, notification: Notification) -> bool:
    """Whether the notification moves the payment (pays one not paid, closes one unpaid).
    An accepted copy of it would have moved it already, so its notify_id need not be looked
    up in the notify log: the notification that pays an order skips that read."""
    if payment is None:
        return False
    if notification.status == TradeStatus.PAID:
        return payment.payment_status not in MONEY_TAKEN
    return notification.status == TradeStatus.CLOSED and payment.payment_status == PaymentStatus.UNPAID


def _ours(payment: Payment | None, notification: Notification) -> Payment:
    """The payment a notification is about, if it is one of ours for that amount (else
    ``NotificationRejected``); the log lines that follow name it."""
    if payment is None:
        raise NotificationRejected("unknown_trade", notification.out_trade_no)
    logfields.add(order_sn=payment.order_sn, payment_id=payment.id)
    if notification.total_amount != to_amount(payment.total_amount):
        raise NotificationRejected(
            "amount_mismatch", f"{notification.total_amount} != {payment.total_amount}"
        )
    return payment


#: A kept header longer than this is cut (a replay of it then fails its signature): strangers
#: post here, and no genuine signature header comes near it.
HEADER_MAX_CHARS = 2048


def _kept_headers(names, headers: Mapping[str, str]) -> str | None:
    """The headers named (any case) as received, a JSON object; None when none are named."""
    if not names:
        return None
    wanted = {name.lower(): name for name in names}
    kept = {
        wanted[key.lower()]: str(value)[:HEADER_MAX_CHARS]
        for key, value in headers.items()
        if key.lower() in wanted
    }
    return json.dumps(kept, ensure_ascii=False, sort_keys=True)


def _text(value) -> str | None:
    """A field as received, for the log: text or nothing, never longer than a column holds."""
    return str(value)[:64] if value else None
