"""Bill runs: fetch a provider's bill of a day, compare it with ours (``core.bills``), act, record.

What each finding does:

- a trade paid at the provider and unpaid (or closed) here takes the path of a query's answer
  (``PaymentService.apply_answer``, source "bill"): the same checks, the same transition and
  event, paid once; its ``callback_time`` is the bill's time of payment;
- a refund still pending here that the bill shows done is completed (``RefundService.apply_notice``);
- a refund the shop never asked for is recorded as done (``RefundService.record_outside``) and
  the payment flagged;
- a payment paid here within the bill's day but absent from it, an amount or a trade number that
  differs, a refund refused here but made there: the payment is flagged for an operator.

Each run is recorded (``BillRun``: counts and differences in words), failed ones too (the bill
not ready yet, the provider unreachable). Running it again changes nothing more: what it
repaired now matches, what it recorded is known, its flags are set already (a flag is added to
what the payment is flagged for, once). ``scheduled`` is the workers' morning job: yesterday's
bill of each provider that keeps bills, once it has been read.
"""

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta

from . import bills
from .bills import DONE, FAILED, Bill, BillRun, Finding
from .errors import DomainError, NotSupported
from .model import Notification, RefundNotice, TradeStatus
from .money import format_amount

log = logging.getLogger(__name__)

SOURCE = "bill"  # how the notify log says we heard
#: A flag set on a payment that has one already is added after this.
FLAG_SEPARATOR = " | "
#: What the payment service's answer says when a bill's trade repaired a payment.
REPAIRED = frozenset({"paid", "paid_after_close", "paid_twice"})


class BillReconciliation:
    """Runs over the providers' daily bills (``run``, ``scheduled``) and what they found (``runs``)."""

    def __init__(
        self, uow: Callable, providers, payments, refunds, clock: Callable[[], datetime] = datetime.now
    ):
        """``payments`` and ``refunds``: the ``PaymentService`` and ``RefundService`` the findings act through."""
        self.uow = uow
        self.providers = providers
        self.payments = payments
        self.refunds = refunds
        self.clock = clock

    def runs(self, limit: int = 30) -> list[BillRun]:
        """The latest runs, newest first."""
        with self.uow() as uow:
            return uow.bill_runs.recent(limit)

    def scheduled(self, hour: int) -> list[BillRun]:
        """From ``hour`` o'clock on (the shop's clock): yesterday's bill of every enabled provider
        that keeps bills, unless a run read it already. Several workers may run it at once: a run
        changes things once, whoever runs it (each may record its run)."""
        now = self.clock()
        if now.hour < hour:
            return []
        day = now.date() - timedelta(days=1)
        done = []
        for provider in self.providers:
            with self.uow() as uow:
                if uow.bill_runs.done(provider.name, day) is not None:
                    continue
            try:
                done.append(self.run(provider.name, day))
            except NotSupported:
                continue
        return done

    def run(self, provider_name: str, day: date) -> BillRun:
        """Fetch the provider's bill of ``day``, compare, act on every finding, record the run.

        ``UnknownProvider``, ``NotSupported`` (a provider without bills) are raised, recording
        nothing; a bill that cannot be had is a failed run.
        """
        provider = self.providers.get(provider_name)
        started = self.clock()
        try:
            bill = provider.daily_bill(day)
        except NotSupported:
            raise
        except DomainError as error:  # ProviderError: not ready, refused, unreachable, unreadable
            log.warning("bill of %s for %s could not be had: %s", provider_name, day, error)
            return self._record(BillRun(provider_name, day, started, self.clock(), FAILED, detail=str(error)))
        run = BillRun(
            provider_name,
            day,
            started,
            started,
            DONE,
            trade_lines=sum(line.kind == bills.TRADE for line in bill.lines),
            refund_lines=sum(line.kind == bills.REFUND for line in bill.lines),
        )
        for finding in bills.compare(bill, *self._ours(bill)):
            run = self._act(bill, finding, run)
        return self._record(replace(run, finished_at=self.clock()))

    def _ours(self, bill: Bill):
        """What ``bills.compare`` sets the bill beside: the payments its lines name, their refunds,
        and the payments paid within its period."""
        with self.uow() as uow:
            payments = {
                out: uow.payments.by_trade(bill.provider, out)
                for out in {line.out_trade_no for line in bill.lines}
            }
            refunds = {
                (refund.payment_id, refund.out_request_no): refund
                for payment in payments.values()
                if payment is not None
                for refund in uow.refunds.for_payment(payment.id)
            }
            paid = uow.payments.paid_between(bill.provider, bill.starts, bill.ends)
        return payments, refunds, paid

    def _act(self, bill: Bill, finding: Finding, run: BillRun) -> BillRun:
        """Do what the finding asks; the run with it counted."""
        kind, line, payment = finding.kind, finding.line, finding.payment
        if kind == bills.MATCHED:
            return replace(run, matched=run.matched + 1)
        if kind == bills.REPAIR:
            answer = Notification(
                out_trade_no=line.out_trade_no,
                total_amount=line.amount,
                status=TradeStatus.PAID,
                trade_no=line.trade_no or None,
                raw=line.raw,
                paid_at=line.finished_at,
            )
            result = self.payments.apply_answer(bill.provider, answer, SOURCE)
            if result.outcome == "duplicate":  # its notify came meanwhile
                return replace(run, matched=run.matched + 1)
            repaired = result.outcome in REPAIRED
            return self._differs(run, f"{finding.detail}: {result.outcome} {result.detail}".strip(), repaired)
        if kind == bills.REFUND_PENDING:
            outcome, _ = self.refunds.apply_notice(
                payment, RefundNotice(finding.refund.out_request_no, line.amount, True)
            )
            return self._differs(run, f"{finding.detail}: {outcome}", outcome == "refunded")
        if kind == bills.REFUND_UNKNOWN:
            request_no = line.request_no or line.out_trade_no
            note = f"recorded from {bill.provider}'s bill of {bill.day}: {format_amount(line.amount)} refunded there"
            if self.refunds.record_outside(payment.id, line.amount, request_no, note):
                self._flag(payment.id, f"{finding.detail} (recorded here from the bill)")
                return replace(
                    self._differs(run, f"{finding.detail}: recorded"),
                    refunds_recorded=run.refunds_recorded + 1,
                )
            self._flag(payment.id, f"{finding.detail} (more than the payment holds here: not recorded)")
            return self._differs(run, f"{finding.detail}: not recorded, more than the payment holds here")
        if kind in bills.FLAGGED:
            self._flag(payment.id, finding.detail)
        return self._differs(run, finding.detail)

    @staticmethod
    def _differs(run: BillRun, difference: str, repaired: bool = False) -> BillRun:
        return replace(run, differences=(*run.differences, difference), repaired=run.repaired + repaired)

    def _flag(self, payment_id: int, flag: str) -> None:
        """Add ``flag`` to what the payment is flagged for, unless it is there already."""
        with self.uow() as uow:
            current = uow.payments.get(payment_id).flag
            if current and flag in current:
                return
            log.warning("payment #%s flagged: %s", payment_id, flag)
            uow.payments.set_flag(payment_id, f"{current}{FLAG_SEPARATOR}{flag}" if current else flag)
            uow.commit()

    def _record(self, run: BillRun) -> BillRun:
        with self.uow() as uow:
            run = uow.bill_runs.add(run)
            uow.commit()
        log.info(
            "bill of %s for %s: %s, %s trade and %s refund lines, %s repaired, %s difference(s)",
            run.provider,
            run.bill_date,
            run.outcome,
            run.trade_lines,
            run.refund_lines,
            run.repaired,
            len(run.differences),
        )
        return run
