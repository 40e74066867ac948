"""Domain errors: each says what went wrong in words a shopper or an operator can act on."""


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""


class OrderNotFound(DomainError):
    def __init__(self, order_sn):
        super().__init__(f"订单不存在: {order_sn}")
        self.order_sn = order_sn


class OrderNotPayable(DomainError):
    """The order is no longer awaiting payment (paid, closed or expired)."""

    def __init__(self, order_sn):
        super().__init__("此订单无法支付,可能已经过期!")
        self.order_sn = order_sn


class IllegalMove(DomainError):
    """A status move its machine (``core.states``) does not allow: no store was asked to make it."""

    def __init__(self, machine, source, target, subject=None):
        allowed = ", ".join(sorted(status.name for status in machine.targets(source)))
        thing = machine.name if subject is None else f"{machine.name} {subject}"
        super().__init__(
            f"{thing} cannot go from {source.name} to {target.name}: the {machine.name} machine "
            + (f"allows from {source.name} only {allowed}" if allowed else f"has no move from {source.name}")
        )
        self.machine = machine
        self.source = source
        self.target = target
        self.subject = subject


class InvalidAmount(DomainError):
    """An amount that is not a number of yuan within Alipay's range."""


class UnknownProvider(DomainError):
    def __init__(self, name):
        super().__init__(f"payment provider {name!r} is not enabled")
        self.name = name


class NotSupported(DomainError):
    """The provider does not offer this operation (yet)."""


class StepNotReady(DomainError):
    """A background step arrived before what it depends on happened: retry later."""


class OrderNotPaidYet(StepNotReady):
    """A fulfilment step arrived before the order was paid: retry later."""

    def __init__(self, order_sn):
        super().__init__(f"order {order_sn} is not paid yet")
        self.order_sn = order_sn


class PointsNotSettledYet(StepNotReady):
    """Points cannot be taken back before the award step has had its outcome."""

    def __init__(self, order_sn):
        super().__init__(f"the points of order {order_sn} are not awarded (or skipped) yet")
        self.order_sn = order_sn


class PaymentNotFound(DomainError):
    def __init__(self, payment_id):
        super().__init__(f"no payment #{payment_id}")
        self.payment_id = payment_id


class RefundRefused(DomainError):
    """A refund the domain will not ask the provider for; ``reason`` is machine-readable:
    ``not_refundable`` (the payment holds no money), ``exceeds_payment`` (more than what is
    left), ``request_no_reused`` (the same out_request_no with another amount),
    ``bad_request_no``."""

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason


class RefundFailed(DomainError):
    """The provider refused the refund; it is recorded as failed and its amount freed."""

    def __init__(self, message, refund=None):
        super().__init__(message)
        self.refund = refund


class RefundPending(DomainError):
    """The provider's answer is unknown (unreachable, busy): the refund stays pending, and a
    retry with the same out_request_no completes it (the provider makes it the same refund)."""

    def __init__(self, message, refund=None):
        super().__init__(message)
        self.refund = refund


class NotificationRejected(DomainError):
    """A provider notification we refuse; ``reason`` is machine-readable."""

    def __init__(self, reason, detail=""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class ProviderError(DomainError):
    """The provider answered a request with an error (or not at all).

    ``code`` and ``sub_code`` are the provider's own (Alipay: ``40004`` and
    ``ACQ.TRADE_NOT_EXIST``); ``sub_code`` is empty when there was no answer. ``retryable``:
    the request may have been done, or may succeed when repeated as it was (no answer at all,
    a system error); otherwise the provider refused it for good. Unless told, an error with no
    code is retryable.
    """

    def __init__(self, message, code="", sub_code="", retryable=None):
        super().__init__(f"{sub_code or code or 'error'}: {message}" if (sub_code or code) else message)
        self.code = code
        self.sub_code = sub_code
        self.retryable = not (code or sub_code) if retryable is None else retryable


class TradeNotFound(ProviderError):
    """The provider has no trade with this number (never opened, or not ours)."""


class TransactionConflict(Exception):
    """The database aborted a unit of work's transaction to end a conflict with another
    (MariaDB's deadlock victim, error 1213; or, with snapshot isolation, 1020: a row changed
    since this transaction's snapshot). Nothing of it happened: the same work may run again."""
