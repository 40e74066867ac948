"""Reconciliation: ask the provider about payments still unpaid, in case its notify was lost.

A payment is first asked about ``query_grace`` after it starts (``PaymentService.start`` sets
``next_query_time``), then after each wait of the provider's own retry series
(``Provider.query_schedule``: Alipay's 4m, 10m, 10m, 1h, 2h, 6h, 15h), until it is paid or
closed, the series ends, or its order is closed (expired): then nobody will pay it any more.

The answer is a ``Notification`` and takes the notification's path
(``PaymentService.apply_answer``): the same checks, the same transition, the same event,
logged in the notify log with source "query". A trade the provider does not know
(``TradeNotFound``, Alipay's 40004 ACQ.TRADE_NOT_EXIST) means the shopper never started
paying: it is logged as "not_started" and asked about again later, since the shopper may
still start.

Workers running the pass at the same time ask about a payment once: each query is claimed by
moving the payment's schedule on (a compare-and-set on its count of queries) before the
provider is called, so a crash mid-query leaves the next query scheduled, never a payment
forgotten.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from . import logfields
from .errors import DomainError, NotSupported, TradeNotFound, UnknownProvider
from .model import DEAD_ORDER_STATUSES, Payment, TradeStatus

log = logging.getLogger(__name__)

SOURCE = "query"


@dataclass(frozen=True)
class QueryResult:
    """What one query made of a payment.

    ``outcome``: what the answer did, as the notify log says it ("paid", "closed",
    "recorded" for a trade still waiting, "paid_after_close", ... or a rejection such as
    "amount_mismatch"), "not_started" (the provider has no such trade), "query_failed",
    "unsupported" (the provider cannot be asked), "stopped" (no more queries: the order is
    closed, or the provider is not enabled); with a dry run, the answer's status.
    """

    payment: Payment
    outcome: str
    detail: str = ""
    answer: TradeStatus | None = None


class Reconciliation:
    """The periodic pass (``run``) and the operator's look at it (``preview``)."""

    def __init__(
        self,
        uow: Callable,
        providers,
        payments,
        clock: Callable[[], datetime] = datetime.now,
        batch: int = 100,
    ):
        """``payments`` is the ``PaymentService`` whose apply path the answers take."""
        self.uow = uow
        self.providers = providers
        self.payments = payments
        self.clock = clock
        self.batch = batch

    def due(self, limit: int | None = None) -> list[Payment]:
        """Unpaid payments whose next query has come, the longest due first."""
        with self.uow() as uow:
            return uow.payments.due_for_query(self.clock(), limit or self.batch)

    def run(self, limit: int | None = None) -> list[QueryResult]:
        """Ask about every payment due (``limit`` at most); what each query made of it.

        Payments another worker claimed meanwhile are left to it (and not in the result).
        """
        results = []
        for payment in self.due(limit):
            with logfields.bound(order_sn=payment.order_sn, payment_id=payment.id):
                try:
                    result = self.reconcile(payment)
                except Exception:  # one payment's trouble (the database, a bug) must not stop the pass
                    log.exception(
                        "reconciliation of payment #%s failed; it is asked about again later", payment.id
                    )
                    continue
            if result is not None:
                results.append(result)
        return results

    def preview(self, limit: int | None = None) -> list[QueryResult]:
        """Ask about the payments due and say what they answer, changing nothing (a dry run)."""
        results = []
        for payment in self.due(limit):
            provider = self._provider(payment)
            if provider is None:
                results.append(
                    QueryResult(payment, "stopped", f"provider {payment.payment_type} is not enabled")
                )
            else:
                results.append(self._ask(provider, payment, apply=False))
        return results

    def reconcile(self, payment: Payment) -> QueryResult | None:
        """Claim this payment's next query and make it; None when another worker claimed it."""
        now = self.clock()
        provider = self._provider(payment)
        with self.uow() as uow:
            order = uow.orders.get(payment.order_sn)
            if provider is None:
                stop = f"provider {payment.payment_type} is not enabled"
            elif order is None:
                stop = f"order {payment.order_sn} does not exist"
            elif order.status in DEAD_ORDER_STATUSES:
                stop = f"order {payment.order_sn} is {order.status.name}"
            else:
                stop = None
            attempts = payment.query_attempts if stop else payment.query_attempts + 1
            later = None if stop else self.next_query_time(provider, attempts, now)
            if not uow.payments.schedule_query(payment.id, payment.query_attempts, attempts, later):
                return None
            uow.commit()
        if stop:
            log.info("no more queries about payment #%s: %s", payment.id, stop)
            return QueryResult(payment, "stopped", stop)
        return self._ask(provider, payment)

    def ask(self, payment: Payment) -> QueryResult:
        """Ask about this payment now, off its schedule, and apply the answer (the last query,
        as its order expires)."""
        provider = self._provider(payment)
        if provider is None:
            return QueryResult(payment, "stopped", f"provider {payment.payment_type} is not enabled")
        return self._ask(provider, payment)

    @staticmethod
    def next_query_time(provider, attempts: int, now: datetime) -> datetime | None:
        """When to ask again after the ``attempts``-th query: the series' wait, or never."""
        schedule = provider.query_schedule
        return now + timedelta(seconds=schedule[attempts - 1]) if attempts <= len(schedule) else None

    def _provider(self, payment: Payment):
        try:
            return self.providers.get(payment.payment_type)
        except UnknownProvider:
            return None

    def _ask(self, provider, payment: Payment, apply: bool = True) -> QueryResult:
        try:
            answer = provider.query(payment)
        except TradeNotFound as error:
            return self._unchanged(
                payment, "not_started", f"the shopper never started paying: {error}", apply
            )
        except NotSupported as error:
            if apply:
                with self.uow() as uow:
                    current = uow.payments.get(payment.id)
                    uow.payments.schedule_query(
                        payment.id, current.query_attempts, current.query_attempts, None
                    )
                    uow.commit()
            return self._unchanged(payment, "unsupported", str(error), apply)
        except DomainError as error:  # ProviderError: an error answer, or none at all
            return self._unchanged(payment, "query_failed", str(error), apply, accepted=False)
        if not apply:
            return QueryResult(
                payment,
                answer.status.value,
                f"trade {answer.trade_no or '-'}, total_amount {answer.total_amount}",
                answer.status,
            )
        result = self.payments.apply_answer(provider.name, answer, SOURCE)
        return QueryResult(result.payment or payment, result.outcome, result.detail, answer.status)

    def _unchanged(self, payment, outcome, detail, apply, accepted=True) -> QueryResult:
        if apply:
            log.info(
                "query about payment #%s (%s %s): %s",
                payment.id,
                payment.payment_type,
                payment.out_trade_no,
                detail,
            )
            self.payments.record_answer(payment, SOURCE, outcome, detail, accepted=accepted)
        return QueryResult(payment, outcome, detail)
