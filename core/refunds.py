"""Refunds: full or partial, through the provider, each once per idempotency key.

A refund is recorded (pending, its amount reserved on the payment) *before* the provider is
asked, and settled after: a crash in between leaves a pending refund that a retry with the
same ``out_request_no`` completes, and the provider, which keys refunds by that number
(Alipay's ``out_request_no``), makes the retry the same refund, never a second one.

Refunds never exceed what was paid: the domain reserves each amount on the payment atomically
(``PaymentStore.reserve_refund``), and the provider refuses more than it took. The payment's
status follows what the provider confirmed: paid, partially refunded, refunded. Once every
payment that paid an order is refunded, ``order.refunded`` takes the order's points back.

Money owed back (paid after the order closed, or paid twice) is refunded by ``auto_refund``,
a background step, with the key ``auto-<payment id>``; where the provider cannot refund, or
refuses, the payment is flagged for an operator, and the step never tries it again by itself.
"""

import json
import logging
import re
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from decimal import Decimal

from . import events, logfields
from .errors import (
    NotSupported,
    PaymentNotFound,
    ProviderError,
    RefundFailed,
    RefundPending,
    RefundRefused,
)
from .fulfilment import DONE, SKIPPED
from .model import (
    PAID_ORDER_STATUSES,
    REFUNDABLE,
    Payment,
    PaymentRefund,
    PaymentStatus,
    RefundNotice,
    RefundReason,
    RefundStatus,
    fully_refunded,
    label,
)
from .money import format_amount, to_amount

log = logging.getLogger(__name__)

#: Alipay's out_request_no: up to 64 characters; we keep to letters, digits and ``-_.:``.
REQUEST_NO = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def auto_request_no(payment_id: int) -> str:
    """The idempotency key of the automatic refund of a payment: one per payment, ever."""
    return f"auto-{payment_id}"


class RefundService:
    """Refund payments; the events a unit of work of ``uow`` writes leave with its commit."""

    def __init__(self, uow: Callable, providers, clock: Callable[[], datetime] = datetime.now):
        self.uow = uow
        self.providers = providers
        self.clock = clock

    @logfields.scoped
    def refund(
        self, payment_id: int, amount, out_request_no: str, reason: str = RefundReason.OPERATOR
    ) -> PaymentRefund:
        """Refund ``amount`` of the payment, once per ``out_request_no``; the refund, succeeded.

        A repeat of a refund that succeeded returns it and asks nobody; a repeat of a pending
        one asks the provider again with the same number (it completes it); a repeat of a
        failed one tries again. Raises ``RefundRefused`` (not asked: nothing to refund, too
        much, the number reused for another amount), ``RefundFailed`` (the provider refused),
        ``RefundPending`` (no answer: retry with the same number), ``NotSupported``.
        """
        logfields.add(payment_id=payment_id)
        amount = to_amount(amount)
        if not isinstance(out_request_no, str) or not REQUEST_NO.fullmatch(out_request_no):
            raise RefundRefused(
                "bad_request_no",
                f"out_request_no must be 1 to 64 letters, digits or -_.: (got {out_request_no!r})",
            )
        payment, refund = self._record(payment_id, amount, out_request_no, reason)
        logfields.add(order_sn=payment.order_sn)
        if refund.status == RefundStatus.SUCCEEDED:
            return refund
        return self._ask(payment, refund)

    def refunds(self, payment_id: int) -> list[PaymentRefund]:
        with self.uow() as uow:
            return uow.refunds.for_payment(payment_id)

    def auto_refund(self, order_sn: str) -> bool:
        """Give back the money of the order's payments that are owed back; True if any was.

        Idempotent: each payment is refunded with its own key (``auto-<id>``). A refund the
        provider cannot make, or refuses, flags the payment for an operator; one whose answer
        is unknown raises ``RefundPending``, so the step is retried.
        """
        with self.uow() as uow:
            owed = [
                (p, uow.refunds.get(p.id, auto_request_no(p.id)))
                for p in uow.payments.for_order(order_sn)
                if p.refund_reason in RefundReason.AUTOMATIC
            ]
        done, notes = False, []
        for payment, earlier in owed:
            if earlier is not None and earlier.status == RefundStatus.SUCCEEDED:
                continue
            if earlier is not None and earlier.status == RefundStatus.FAILED:
                # Refused once: an operator decides (and may retry it with the same key), so a
                # refund made by hand meanwhile is never made a second time by itself.
                notes.append(f"payment #{payment.id}: its automatic refund failed; left to an operator")
                continue
            amount = earlier.amount if earlier is not None else payment.refundable
            if payment.payment_status not in REFUNDABLE or amount <= 0:
                continue
            try:
                self.refund(payment.id, amount, auto_request_no(payment.id), payment.refund_reason)
            except (NotSupported, RefundFailed, RefundRefused) as error:
                flag = (
                    f"{payment.refund_reason}: the automatic refund of {format_amount(amount)} failed "
                    f"({error}); refund it (gmall-payment payments refund {payment.id} {format_amount(amount)} "
                    f"--key {auto_request_no(payment.id)} tries the provider again) and clear this flag"
                )
                self._flag(payment.id, flag)
                notes.append(f"payment #{payment.id} flagged: {error}")
                log.error("payment #%s of order %s: %s", payment.id, order_sn, flag)
                continue
            done = True
            notes.append(
                f"payment #{payment.id} ({payment.payment_type}, {payment.refund_reason}) "
                f"refunded {format_amount(amount)}"
            )
        with self.uow() as uow:
            uow.trace.record(
                order_sn,
                events.AUTO_REFUND,
                DONE if done else SKIPPED,
                "; ".join(notes) or "nothing owed back",
            )
            uow.commit()
        return done

    # the steps of a refund

    def _record(
        self, payment_id, amount: Decimal, request_no: str, reason: str
    ) -> tuple[Payment, PaymentRefund]:
        """The refund to ask for (pending, its amount reserved), or one that already succeeded."""
        now = self.clock()
        with self.uow() as uow:
            payment, refund, created = self._add(uow, payment_id, amount, request_no, reason, now)
            if not created:
                if refund.amount != amount:
                    raise RefundRefused(
                        "request_no_reused",
                        f"out_request_no {request_no} of payment #{payment.id} "
                        f"was used for a refund of {refund.amount}, not {amount}",
                    )
                if refund.status != RefundStatus.FAILED:
                    return payment, refund  # succeeded: done; pending: ask again to complete it
            elif payment.payment_status not in REFUNDABLE:
                raise RefundRefused(
                    "not_refundable",
                    f"payment #{payment.id}: {label(payment.payment_status)}, it holds no money to refund",
                )
            if not uow.payments.reserve_refund(payment.id, amount):
                current = uow.payments.get(payment.id)
                raise RefundRefused(
                    "exceeds_payment",
                    f"refund of {amount} refused: {current.refund_reserved} of the {current.total_amount} paid "
                    f"is refunded or being refunded already, so at most {current.refundable} can be refunded",
                )
            if not created:  # a failed refund, tried again
                if not uow.refunds.move(
                    refund.id, RefundStatus.FAILED, RefundStatus.PENDING, update_time=now
                ):
                    return payment, uow.refunds.get(payment.id, request_no)  # someone else retries it
                refund.status = RefundStatus.PENDING
            uow.commit()
            return payment, refund

    @staticmethod
    def _add(uow, payment_id, amount: Decimal, request_no: str, reason: str, now: datetime, answer: str = ""):
        """The payment and its refund ``request_no``, added pending unless it has one: (payment,
        refund, whether this call added it)."""
        payment = uow.payments.get(payment_id)
        if payment is None:
            raise PaymentNotFound(payment_id)
        refund, created = uow.refunds.add_once(
            PaymentRefund(
                payment_id=payment.id,
                order_sn=payment.order_sn,
                out_request_no=request_no,
                amount=amount,
                reason=reason,
                create_time=now,
                update_time=now,
                answer=answer,
            )
        )
        return payment, refund, created

    def _ask(self, payment: Payment, refund: PaymentRefund) -> PaymentRefund:
        provider = self.providers.get(payment.payment_type)
        try:
            answer = provider.refund(payment, refund.amount, refund.out_request_no)
        except NotSupported as error:
            self._fail(refund, str(error))
            raise
        except ProviderError as error:
            if error.retryable:
                self._note(refund, f"no answer yet: {error}")
                raise RefundPending(
                    f"refund {refund.out_request_no} of payment #{payment.id} is pending "
                    f"({error}): retry with the same out_request_no",
                    refund,
                ) from error
            self._fail(refund, str(error))
            raise RefundFailed(
                f"{payment.payment_type} refused refund {refund.out_request_no} of payment "
                f"#{payment.id}: {error}",
                refund,
            ) from error
        return self._complete(refund, answer)

    def apply_notice(self, payment: Payment, notice: RefundNotice) -> tuple[str, str]:
        """The provider's notification about refund ``notice.request_no``: a pending one succeeds
        or fails by it, and a total refunded beyond the shop's refunds flags the payment;
        (outcome, detail) for the notify log."""
        with self.uow() as uow:
            refund = uow.refunds.get(payment.id, notice.request_no)
        if refund is None:
            flag = (
                f"{payment.payment_type} notifies refund {notice.request_no} of {notice.amount} on payment "
                f"#{payment.id}, which the shop never asked for: was it refunded outside the shop?"
            )
            self._flag(payment.id, flag)
            return "unknown_refund", flag
        if notice.amount is not None and refund.amount != notice.amount:
            flag = (
                f"{payment.payment_type} notifies refund {notice.request_no} of {notice.amount}, "
                f"asked for {refund.amount}"
            )
            self._flag(payment.id, flag)
            return "refund_mismatch", flag
        if refund.status != RefundStatus.PENDING:
            outcome = "duplicate"
        elif notice.succeeded:
            self._complete(refund, notice)
            outcome = "refunded"
        else:
            self._fail(
                refund, f"{payment.payment_type} notifies that refund {notice.request_no} did not go through"
            )
            return "refund_failed", f"refund {notice.request_no} failed at {payment.payment_type}"
        return outcome, self._check_total(payment, notice)

    def _check_total(self, payment: Payment, notice: RefundNotice) -> str:
        """A provider's total refunded (``notice.refunded_total``) beyond the refunds asked for here
        flags the payment: some money went back without the shop; "" when it is covered."""
        with self.uow() as uow:
            reserved = uow.payments.get(payment.id).refund_reserved
        if notice.refunded_total is None or notice.refunded_total <= reserved:
            return ""
        flag = (
            f"{payment.payment_type} says {notice.refunded_total} of trade {payment.out_trade_no} is refunded, "
            f"but only {reserved} is refunded or being refunded here: was it refunded outside the shop?"
        )
        self._flag(payment.id, flag)
        return flag

    def record_outside(self, payment_id: int, amount: Decimal, request_no: str, note: str) -> bool:
        """A refund the provider made that the shop never asked for (found in its bill): recorded as
        done (reason "outside", ``note`` its answer), so the payment's status and what it may still
        refund follow it; True if this call recorded it. False, nothing recorded, when the payment
        cannot hold it (not paid here, or more than is left): the caller flags it."""
        with self.uow() as uow:
            payment, refund, created = self._add(
                uow, payment_id, amount, request_no, RefundReason.OUTSIDE, self.clock(), answer=note
            )
            if not created or not uow.payments.reserve_refund(payment.id, amount):
                return False  # rolled back: a refund that cannot be held is not recorded
            uow.commit()
        self._complete(refund, RefundNotice(request_no, amount, succeeded=True))
        return True

    def _complete(self, refund: PaymentRefund, answer) -> PaymentRefund:
        """The provider refunded: the refund succeeds, the payment's status follows."""
        now = self.clock()
        text = json.dumps({k: str(v) for k, v in asdict(answer).items()}, ensure_ascii=False, sort_keys=True)
        with self.uow() as uow:
            if not uow.refunds.move(
                refund.id, RefundStatus.PENDING, RefundStatus.SUCCEEDED, update_time=now, answer=text
            ):
                return uow.refunds.get(refund.payment_id, refund.out_request_no)  # completed by a twin
            payment = uow.payments.add_refunded(refund.payment_id, refund.amount)
            target = (
                PaymentStatus.REFUNDED
                if payment.refunded >= payment.total_amount
                else PaymentStatus.PARTIALLY_REFUNDED
            )
            if payment.payment_status != target:  # a move states.PAYMENTS refuses raises IllegalMove
                uow.payments.move(payment.id, payment.payment_status, target)
            order = uow.orders.get(payment.order_sn)
            if (
                target == PaymentStatus.REFUNDED
                and payment.refund_reason is None
                and order is not None
                and order.status in PAID_ORDER_STATUSES
                and fully_refunded(uow.payments.for_order(order.order_sn))
            ):
                uow.outbox.add(events.order_refunded(order.order_sn))
            refund = uow.refunds.get(refund.payment_id, refund.out_request_no)
            uow.commit()
        log.info("refund %s of payment #%s: %s", refund.out_request_no, refund.payment_id, refund.amount)
        return refund

    def _fail(self, refund: PaymentRefund, why: str) -> None:
        """The provider refused: the refund fails and its amount is free again."""
        with self.uow() as uow:
            if uow.refunds.move(
                refund.id, RefundStatus.PENDING, RefundStatus.FAILED, update_time=self.clock(), answer=why
            ):
                uow.payments.release_refund(refund.payment_id, refund.amount)
            uow.commit()

    def _note(self, refund: PaymentRefund, what: str) -> None:
        with self.uow() as uow:
            uow.refunds.note(refund.id, RefundStatus.PENDING, update_time=self.clock(), answer=what)
            uow.commit()

    def _flag(self, payment_id: int, flag: str) -> None:
        with self.uow() as uow:
            uow.payments.set_flag(payment_id, flag)
            uow.commit()
