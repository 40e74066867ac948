"""Daily bills: a provider's statement of a day's trades and refunds, compared with ours.

A provider that keeps bills (Alipay's 业务明细, ``alipay.data.dataservice.bill.downloadurl.query``)
gives the day's lines as ``Bill``; ``compare`` sets each line beside the payment and refund it
names, and every payment paid here that day beside the lines, and says what it finds
(``Finding``). It decides nothing by itself and changes nothing: ``core.bill_runs`` acts on the
findings through the payment and refund services, so a trade the bill repairs takes the path of
a query's answer.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from .model import MONEY_TAKEN, Payment, PaymentRefund, RefundStatus

#: A bill line's kind: money the buyer paid, or money given back.
TRADE, REFUND = "trade", "refund"

# What ``compare`` finds, by kind.
MATCHED = "matched"  # a trade paid here for the same amount, or a refund done here alike
REPAIR = "repair"  # paid at the provider, unpaid (or closed) here: apply it as a query's answer
REFUND_PENDING = "refund_pending"  # a refund still pending here that the provider made: complete it
REFUND_UNKNOWN = "refund_unknown"  # a refund the shop never asked for: record it, flag the payment
AMOUNT_MISMATCH = "amount_mismatch"  # a trade of another amount than the payment's
SECOND_TRADE = "second_trade"  # paid here under another trade number
REFUND_MISMATCH = "refund_mismatch"  # a refund of another amount than the one asked for
REFUND_FAILED_HERE = "refund_failed_here"  # a refund the shop holds as refused, made by the provider
UNKNOWN_TRADE = "unknown_trade"  # a line about a trade no payment here has
OTHER_LINE = "other_line"  # a line of a kind the shop does not reconcile (neither trade nor refund)
ABSENT = "absent"  # paid here within the bill's day, but not in the bill
#: The findings that flag the payment they are about (an operator must look).
FLAGGED = frozenset({AMOUNT_MISMATCH, SECOND_TRADE, REFUND_MISMATCH, REFUND_FAILED_HERE, ABSENT})


@dataclass(frozen=True)
class BillLine:
    """One line of a bill, of ``kind`` TRADE, REFUND or the provider's own word for another.
    ``amount`` is positive: what the trade took, or what the refund gave
    back; ``request_no`` is a refund's out_request_no; ``finished_at`` when the provider says the
    line happened (the shop's clock); ``raw`` the line as the provider wrote it, for the notify log."""

    kind: str
    out_trade_no: str
    trade_no: str
    amount: Decimal
    finished_at: datetime | None = None
    request_no: str = ""
    raw: str = ""


@dataclass(frozen=True)
class Bill:
    """A provider's bill of one day: its lines, and the period they cover on the shop's clock
    (``starts`` included, ``ends`` not), which is the provider's day in its own time zone."""

    provider: str
    day: date
    starts: datetime
    ends: datetime
    lines: tuple[BillLine, ...]


@dataclass(frozen=True)
class Finding:
    """What ``compare`` found about a line (``line``) or a payment paid here (``payment``)."""

    kind: str
    out_trade_no: str
    detail: str
    payment: Payment | None = None
    line: BillLine | None = None
    refund: PaymentRefund | None = None


def compare(
    bill: Bill,
    payments: Mapping[str, Payment | None],
    refunds: Mapping[tuple[int, str], PaymentRefund],
    paid_that_day: Iterable[Payment],
) -> list[Finding]:
    """The findings of ``bill``: its trade lines first (a trade repaired here may then take the
    refunds of the same bill), then its refund lines and any other, then the payments absent from it.

    ``payments``: ours by out_trade_no, for every line's; ``refunds``: ours by (payment id,
    out_request_no), of those payments; ``paid_that_day``: our payments of the bill's provider
    whose money came within the bill's period.
    """
    trades = [line for line in bill.lines if line.kind == TRADE]
    found = [_trade(bill, line, payments.get(line.out_trade_no)) for line in trades]
    found += [
        _refund(bill, line, payments.get(line.out_trade_no), refunds)
        for line in bill.lines
        if line.kind == REFUND
    ]
    found += [
        Finding(
            OTHER_LINE,
            line.out_trade_no,
            f"bill {bill.day}: {bill.provider} line of kind {line.kind!r} about {line.out_trade_no} "
            f"({line.amount}) is not reconciled here: check it by hand",
            line=line,
        )
        for line in bill.lines
        if line.kind not in (TRADE, REFUND)
    ]
    billed = {line.out_trade_no for line in trades}
    found += [
        Finding(
            ABSENT,
            payment.out_trade_no,
            f"bill {bill.day}: {bill.provider} has no trade {payment.out_trade_no} though it was paid here "
            f"({payment.total_amount}) that day: check it with {bill.provider}",
            payment=payment,
        )
        for payment in paid_that_day
        if payment.out_trade_no not in billed
    ]
    return found


def _trade(bill: Bill, line: BillLine, payment: Payment | None) -> Finding:
    name, out = bill.provider, line.out_trade_no
    if payment is None:
        return Finding(
            UNKNOWN_TRADE,
            out,
            f"bill {bill.day}: {name} trade {out} of {line.amount} is no payment here",
            line=line,
        )
    if line.amount != payment.total_amount:
        return Finding(
            AMOUNT_MISMATCH,
            out,
            f"bill {bill.day}: {name} took {line.amount} for trade {out}, the payment is of "
            f"{payment.total_amount}: check it with {name}",
            payment,
            line,
        )
    if payment.payment_status not in MONEY_TAKEN:
        return Finding(
            REPAIR,
            out,
            f"bill {bill.day}: paid at {name} (trade {line.trade_no}), "
            f"{payment.payment_status.name.lower()} here",
            payment,
            line,
        )
    if line.trade_no and payment.trade_no and line.trade_no != payment.trade_no:
        return Finding(
            SECOND_TRADE,
            out,
            f"bill {bill.day}: {name} has trade {line.trade_no} paid for {out}, this payment's trade is "
            f"{payment.trade_no}: check it with {name}",
            payment,
            line,
        )
    return Finding(MATCHED, out, "", payment, line)


def _refund(
    bill: Bill, line: BillLine, payment: Payment | None, refunds: Mapping[tuple[int, str], PaymentRefund]
) -> Finding:
    name, out = bill.provider, line.out_trade_no
    request_no = line.request_no or out  # Alipay's refund by out_trade_no alone is numbered so
    what = f"bill {bill.day}: {name} refunded {line.amount} of trade {out} (request {request_no})"
    if payment is None:
        return Finding(UNKNOWN_TRADE, out, f"{what}, which is no payment here", line=line)
    refund = refunds.get((payment.id, request_no))
    if refund is None:
        return Finding(
            REFUND_UNKNOWN,
            out,
            f"{what}, which the shop never asked for: was it refunded outside the shop?",
            payment,
            line,
        )
    if refund.amount != line.amount:
        return Finding(REFUND_MISMATCH, out, f"{what}, asked for {refund.amount} here", payment, line, refund)
    if refund.status == RefundStatus.FAILED:
        return Finding(
            REFUND_FAILED_HERE, out, f"{what}, which the shop holds as refused", payment, line, refund
        )
    if refund.status == RefundStatus.PENDING:
        return Finding(REFUND_PENDING, out, f"{what}, pending here", payment, line, refund)
    return Finding(MATCHED, out, "", payment, line, refund)


#: A bill run's outcome: the bill was read (and acted on), or could not be had.
DONE, FAILED = "done", "failed"


@dataclass(frozen=True)
class BillRun:
    """One run over a day's bill (``payment_bill_run``), as operators see it: ``outcome`` "done",
    or "failed" (the bill could not be had: ``detail`` says why); the lines counted, what matched,
    what the run repaired (trades applied as paid, pending refunds completed), the refunds it
    recorded, and every difference in words (``differences``), the repaired ones too."""

    provider: str
    bill_date: date
    started_at: datetime
    finished_at: datetime
    outcome: str
    trade_lines: int = 0
    refund_lines: int = 0
    matched: int = 0
    repaired: int = 0
    refunds_recorded: int = 0
    differences: tuple[str, ...] = ()
    detail: str = ""
    id: int | None = None
