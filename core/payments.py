"""Starting payments and handling providers' notifications."""

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from . import events
from .errors import NotificationRejected, OrderNotFound, OrderNotPayable
from .model import Notification, OrderStatus, Payment, PaymentStatus, TradeStatus
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

    def handle_notification(self, provider_name: str, params: Mapping[str, str]) -> NotificationResult:
        """Verify, check and apply a provider's asynchronous notification.

        A rejection changes nothing and says why; an authentic copy of a notification we
        already applied is acknowledged so that the provider stops retrying.
        """
        provider = self.providers.get(provider_name)
        try:
            notification = provider.parse_notification(params)
            outcome, payment, event_ids = self._apply(provider_name, notification)
        except NotificationRejected as rejected:
            log.warning("%s notification rejected: %s", provider_name, rejected)
            ack = provider.acknowledge(False)
            return NotificationResult(
                False, rejected.reason, ack.body, ack.content_type, ack.status, detail=rejected.detail
            )
        if event_ids:
            self.after_commit(*event_ids)
        ack = provider.acknowledge(True)
        log.info("%s notification for %s: %s", provider_name, notification.out_trade_no, outcome)
        return NotificationResult(True, outcome, ack.body, ack.content_type, ack.status, payment)

    def _apply(self, provider_name: str, notification: Notification):
        with self.uow() as uow:
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
                return "recorded", payment, ()
            if payment.payment_status == target:
                return "duplicate", payment, ()
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
                return "duplicate", payment, ()
            event_ids = ()
            if target == PaymentStatus.PAID:
                event = events.payment_succeeded(
                    payment.order_sn, provider_name, notification.trade_no, payment.total_amount
                )
                event_ids = (uow.outbox.add(event),)
            uow.commit()
            payment.payment_status = target
            payment.trade_no = notification.trade_no
            payment.callback_time = now
            return target.name.lower(), payment, event_ids
