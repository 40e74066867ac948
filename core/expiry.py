"""Order expiry: an order still unpaid ``timeout`` (ORDER_PAY_TIMEOUT_SECONDS) after it was placed is
closed, and so are its trades at the providers.

``run`` (the workers' periodic pass) finds the orders due and closes each through
``OrderClosing.close`` (0 -> 4 only if still 0, stock locks released, ``order.closed``), after
one last query about each of its unpaid payments: money that came in at the last minute, its
notify lost, pays the order instead of being refunded. ``close_trades``, the step
``order.closed`` triggers (whoever closed the order), closes the order's unpaid trades at
their providers (``alipay.trade.close``): a trade the provider never opened, or a provider
that cannot close, is closed here only; a provider that refuses to close has been paid, and
its answer to a query then takes the notification's path, so the money is recorded and goes
back (paid after close).

What the shop cannot settle by itself is flagged for an operator (``payments list --attention
flagged``), never left only in the trace: an order closed while a payment's last query had no
answer (the shopper may have paid), and a trade that could not be closed at its provider (the
step is retried; the flag goes once the trade is closed).
"""

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from . import events, logfields
from .errors import NotSupported, OrderNotFound, ProviderError, TradeNotFound, UnknownProvider
from .fulfilment import DONE, SKIPPED
from .model import DEAD_ORDER_STATUSES, MONEY_TAKEN, Notification, Order, Payment, PaymentStatus, TradeStatus

log = logging.getLogger(__name__)

#: Why ``run`` closes an order (the ``order.closed`` event's reason).
EXPIRED = "expired"
#: How the flags this module sets begin (``unflag`` clears only those).
UNKNOWN_AT_CLOSE = "outcome unknown when the order closed"
CLOSE_FAILED = "could not close the trade"


def pay_deadline(order: Order, timeout: timedelta) -> datetime | None:
    """When ``OrderExpiry.run`` closes the order if it is still unpaid: ``timeout``
    (ORDER_PAY_TIMEOUT_SECONDS) after it was placed; None for an order with no create_time."""
    return order.create_time + timeout if order.create_time else None


@dataclass(frozen=True)
class ExpiryResult:
    """``outcome``: "closed"; "paid" (money came in: not closed, fulfilment marks it paid);
    "skipped" (it left status 0 meanwhile); with a dry run, "due"."""

    order_sn: str
    outcome: str
    detail: str = ""


class OrderExpiry:
    def __init__(
        self,
        uow: Callable,
        closing,
        reconciliation,
        payments,
        providers,
        clock: Callable[[], datetime] = datetime.now,
        timeout: timedelta = timedelta(minutes=30),
        batch: int = 100,
    ):
        """``closing``: ``OrderClosing``; ``reconciliation``: asks the last query; ``payments``:
        the ``PaymentService`` whose apply path the providers' answers take."""
        self.uow = uow
        self.closing = closing
        self.reconciliation = reconciliation
        self.payments = payments
        self.providers = providers
        self.clock = clock
        self.timeout = timeout
        self.batch = batch

    def due(self, limit: int | None = None) -> list[str]:
        """Orders awaiting payment for longer than the timeout, the oldest first."""
        with self.uow() as uow:
            return uow.orders.awaiting_payment_since(self.clock() - self.timeout, limit or self.batch)

    def run(self, limit: int | None = None, dry_run: bool = False) -> list[ExpiryResult]:
        """Expire every order due (``limit`` at most); ``dry_run``: only say which."""
        if dry_run:
            return [ExpiryResult(order_sn, "due") for order_sn in self.due(limit)]
        results = []
        for order_sn in self.due(limit):
            with logfields.bound(order_sn=order_sn):
                try:
                    results.append(self.expire(order_sn))
                except Exception:  # one order's trouble must not stop the pass; it is due again next time
                    log.exception("expiry of order %s failed; it is tried again on the next pass", order_sn)
        return results

    def expire(self, order_sn: str) -> ExpiryResult:
        """Close the order unless money came in for it (asking about its unpaid payments first)."""
        with self.uow() as uow:
            payments = uow.payments.for_order(order_sn)
        unanswered = []
        for payment in payments:
            if payment.payment_status == PaymentStatus.UNPAID:
                asked = self.reconciliation.ask(payment)
                payment = asked.payment
                if asked.outcome == "query_failed":
                    unanswered.append((payment, asked.detail))
            if payment.payment_status in MONEY_TAKEN:
                return ExpiryResult(
                    order_sn,
                    "paid",
                    f"payment #{payment.id} ({payment.payment_type}) is "
                    f"{payment.payment_status.name}: the order is being paid, not closed",
                )
        if self.closing.close(order_sn, EXPIRED):
            for payment, detail in unanswered:
                self.payments.flag(
                    payment.id,
                    f"{UNKNOWN_AT_CLOSE} ({payment.payment_type} did not answer: "
                    f"{detail}): ask {payment.payment_type} whether trade {payment.out_trade_no} "
                    "was paid; money paid there is not recorded here",
                )
            return ExpiryResult(order_sn, "closed", f"unpaid for more than {self.timeout}")
        return ExpiryResult(order_sn, "skipped", "it left status 0 meanwhile")

    def close_trades(self, order_sn: str) -> bool:
        """The ``order.closed`` step: close the order's unpaid trades at their providers; True
        if any payment changed. A provider's answer that may change (no answer) raises, so the
        step is retried."""
        with self.uow() as uow:
            order = uow.orders.get(order_sn)
            if order is None:
                raise OrderNotFound(order_sn)
            open_payments = [
                p for p in uow.payments.for_order(order_sn) if p.payment_status == PaymentStatus.UNPAID
            ]
        if order.status not in DEAD_ORDER_STATUSES:
            notes = [f"the order is {order.status.name}: its trades stay open"]
        else:
            notes = [self._close(payment) for payment in open_payments]
        with self.uow() as uow:
            uow.trace.record(
                order_sn,
                events.CLOSE_TRADES,
                DONE if open_payments and order.status in DEAD_ORDER_STATUSES else SKIPPED,
                "; ".join(notes) or "no trade left open",
            )
            uow.commit()
        return bool(open_payments) and order.status in DEAD_ORDER_STATUSES

    def _close(self, payment: Payment) -> str:
        """Close the payment's trade; one that cannot be closed yet is flagged (and raised, to retry)."""
        try:
            done = self._close_trade(payment)
        except ProviderError as error:
            self.payments.flag(
                payment.id,
                f"{CLOSE_FAILED} at {payment.payment_type} ({error}), its order "
                f"closed: the shopper may still pay; close_trades is retried",
            )
            raise
        self.payments.unflag(payment.id, CLOSE_FAILED)
        return done

    def _close_trade(self, payment: Payment) -> str:
        try:
            provider = self.providers.get(payment.payment_type)
        except UnknownProvider:
            return self._closed_here(payment, f"provider {payment.payment_type} is not enabled")
        try:
            provider.close(payment)
        except TradeNotFound:
            return self._closed_here(payment, "the shopper never started paying")
        except NotSupported as error:
            return self._closed_here(payment, str(error))
        except ProviderError as error:
            if error.retryable:
                raise
            # Refused: the trade was paid (or closed) at the provider already. What is it?
            answer = provider.query(payment)
            result = self.payments.apply_answer(provider.name, answer, "query")
            self.payments.unflag(payment.id, UNKNOWN_AT_CLOSE)  # the provider has told us now
            return (
                f"payment #{payment.id}: {provider.name} would not close it ({error}); it says "
                f"{answer.status.value}: {result.outcome}"
            )
        result = self.payments.apply_answer(
            provider.name, self._closed(payment, f"closed at {provider.name}"), "close"
        )
        self.payments.unflag(payment.id, UNKNOWN_AT_CLOSE)  # closed unpaid at the provider: nothing was paid
        return f"payment #{payment.id}: closed at {provider.name} ({result.outcome})"

    def _closed_here(self, payment: Payment, why: str) -> str:
        result = self.payments.apply_answer(
            payment.payment_type, self._closed(payment, f"closed here: {why}"), "close"
        )
        return f"payment #{payment.id}: closed here, {why} ({result.outcome})"

    @staticmethod
    def _closed(payment: Payment, what: str) -> Notification:
        return Notification(
            out_trade_no=payment.out_trade_no,
            total_amount=payment.total_amount,
            status=TradeStatus.CLOSED,
            raw=json.dumps({"closed": what}, ensure_ascii=False),
        )
