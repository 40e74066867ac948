"""Starting payments and handling providers' notifications."""

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from urllib.parse import parse_qsl, urlencode

from . import events
from .errors import DomainError, NotificationRejected, OrderNotFound, OrderNotPayable
from .model import Notification, NotificationRecord, OrderStatus, Payment, PaymentStatus, TradeStatus
from .money import to_amount

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NotificationResult:
    """What became of a notification; ``body`` is what the provider must read back."""

    accepted: bool
    outcome: str  # "paid", "closed", "duplicate", "recorded", or the rejection reason
    body: str
    content_type: str
    status: int
    payment: Payment | None = None
    detail: str = ""
    record_id: int | None = None  # the notify log's entry


class PaymentService:
    """Payments of orders through any enabled provider.

    ``uow`` builds a unit of work (see ``ports.store.UnitOfWork``); ``providers`` is a
    ``ports.providers.ProviderRegistry``; ``clock`` returns the current time;
    ``after_commit(*ids)`` runs after a commit that wrote events, with their outbox ids (the
    outbox relay sends them at once).
    """

    def __init__(self, uow: Callable, providers, clock: Callable[[], datetime] = datetime.now,
                 after_commit: Callable[..., object] = lambda *ids: None):
        self.uow = uow
        self.providers = providers
        self.clock = clock
        self.after_commit = after_commit

    def start(self, order_sn: str, provider_name: str) -> Payment:
        """The payment of this order with this provider, made once however often asked."""
        self.providers.get(provider_name)
        with self.uow() as uow:
            order = uow.orders.get(order_sn)
            if order is None:
                raise OrderNotFound(order_sn)
            if order.status != OrderStatus.AWAITING_PAYMENT:
                raise OrderNotPayable(order_sn)
            payments = uow.payments.for_order(order_sn)
            if any(p.payment_status == PaymentStatus.PAID for p in payments):
                raise OrderNotPayable(order_sn)  # paid already, fulfilment not yet through
            payment = next((p for p in payments if p.payment_type == provider_name), None)
            if payment is None:
                payment = uow.payments.add_once(
                    Payment(
                        order_sn=order_sn,
                        payment_type=provider_name,
                        total_amount=to_amount(order.pay_amount),
                        subject=order.subject,
                        create_time=self.clock(),
                    )
                )
                uow.commit()
        if payment.payment_status != PaymentStatus.UNPAID:
            raise OrderNotPayable(order_sn)
        return payment

    def checkout(self, order_sn: str, provider_name: str, urls):
        """Start (or resume) the payment and ask the provider how to send the shopper there."""
        payment = self.start(order_sn, provider_name)
        return self.providers.get(provider_name).checkout(payment, urls)

    def handle_notification(self, provider_name: str, params: Mapping[str, str], raw: str | None = None,
                            replay_of: int | None = None) -> NotificationResult:
        """Verify, check and apply a provider's asynchronous notification, and log it.

        A rejection changes nothing but the notify log and says why; an authentic copy of a
        notification we already applied (same ``notify_id``, or a payment already in the
        state it reports) is acknowledged so that the provider stops retrying. ``raw`` is the
        body as posted (kept for operators; ``params`` url-encoded when not given).
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
        )
        try:
            notification = provider.parse_notification(params)
            entry = replace(entry, verified=True, notify_id=notification.notify_id or entry.notify_id,
                            out_trade_no=notification.out_trade_no)
            self._confirm_by_query(provider, notification)
            outcome, payment, entry, event_ids = self._apply(provider_name, notification, entry)
        except NotificationRejected as rejected:
            log.warning("%s notification rejected: %s", provider_name, rejected)
            entry = self._log_rejection(entry, rejected)
            ack = provider.acknowledge(False)
            return NotificationResult(
                False, rejected.reason, ack.body, ack.content_type, ack.status, detail=rejected.detail,
                record_id=entry.id,
            )
        if event_ids:
            self.after_commit(*event_ids)
        ack = provider.acknowledge(True)
        log.info("%s notification for %s: %s", provider_name, notification.out_trade_no, outcome)
        return NotificationResult(True, outcome, ack.body, ack.content_type, ack.status, payment,
                                  record_id=entry.id)

    def replay(self, record_id: int) -> NotificationResult:
        """Handle a logged notification again, from its raw body (an operator's retry)."""
        with self.uow() as uow:
            record = uow.notifications.get(record_id)
        if record is None:
            raise LookupError(f"no notification #{record_id}")
        params = {}
        for key, value in parse_qsl(record.raw, keep_blank_values=True):
            params.setdefault(key, value)  # the first of repeated fields, as the web form reads them
        return self.handle_notification(record.provider, params, raw=record.raw, replay_of=record.id)

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
        entry = replace(entry, outcome=rejected.reason, detail=rejected.detail,
                        verified=rejected.reason != "bad_signature")
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
        if payment is None or payment.payment_status != PaymentStatus.UNPAID:
            return
        try:
            answer = provider.query(payment)
        except DomainError as error:
            raise NotificationRejected("not_confirmed", f"query failed: {error}") from None
        if (answer.status, answer.total_amount, answer.out_trade_no) != (
            TradeStatus.PAID, notification.total_amount, notification.out_trade_no
        ) or (notification.trade_no and answer.trade_no and answer.trade_no != notification.trade_no):
            raise NotificationRejected(
                "not_confirmed",
                f"query says {answer.status.value} {answer.total_amount} trade {answer.trade_no}",
            )

    def _apply(self, provider_name: str, notification: Notification, entry: NotificationRecord):
        """Apply an authentic notification: (outcome, payment, log entry, ids of events written)."""
        with self.uow() as uow:
            if notification.notify_id and uow.notifications.accepted(provider_name, notification.notify_id):
                payment = uow.payments.by_trade(provider_name, notification.out_trade_no)
                return "duplicate", payment, self._log(uow, entry, "duplicate"), ()
            payment = uow.payments.by_trade(provider_name, notification.out_trade_no)
            if payment is None:
                raise NotificationRejected("unknown_trade", notification.out_trade_no)
            if notification.total_amount != to_amount(payment.total_amount):
                raise NotificationRejected(
                    "amount_mismatch", f"{notification.total_amount} != {payment.total_amount}"
                )
            target = {
                TradeStatus.PAID: PaymentStatus.PAID,
                TradeStatus.CLOSED: PaymentStatus.CLOSED,
            }.get(notification.status)
            if target is None:
                return "recorded", payment, self._log(uow, entry, "recorded"), ()
            if payment.payment_status == target:
                return "duplicate", payment, self._log(uow, entry, "duplicate"), ()
            if not payment.can_move(target):
                raise NotificationRejected(
                    "invalid_transition", f"{payment.payment_status.name} -> {target.name}"
                )
            now = self.clock()
            moved = uow.payments.move(
                payment.id,
                PaymentStatus.UNPAID,
                target,
                trade_no=notification.trade_no,
                callback_time=now,
                callback_content=notification.raw or json.dumps({"out_trade_no": notification.out_trade_no}),
            )
            if not moved:  # another copy of this notification won the race
                return "duplicate", payment, self._log(uow, entry, "duplicate"), ()
            event_ids = ()
            if target == PaymentStatus.PAID:
                event = events.payment_succeeded(
                    payment.order_sn, provider_name, notification.trade_no, payment.total_amount
                )
                event_ids = (uow.outbox.add(event),)
            outcome = target.name.lower()
            entry = self._log(uow, entry, outcome)
            payment.payment_status = target
            payment.trade_no = notification.trade_no
            payment.callback_time = now
            return outcome, payment, entry, event_ids

    @staticmethod
    def _log(uow, entry: NotificationRecord, outcome: str) -> NotificationRecord:
        """Log an accepted notification and commit it with whatever the unit of work changed."""
        entry = uow.notifications.add(replace(entry, accepted=True, outcome=outcome))
        uow.commit()
        return entry


def _text(value) -> str | None:
    """A field as received, for the log: text or nothing, never longer than a column holds."""
    return str(value)[:64] if value else None
