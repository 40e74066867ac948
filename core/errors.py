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


class InvalidAmount(DomainError):
    """An amount that is not a number of yuan within Alipay's range."""


class UnknownProvider(DomainError):
    def __init__(self, name):
        super().__init__(f"payment provider {name!r} is not enabled")
        self.name = name


class NotSupported(DomainError):
    """The provider does not offer this operation (yet)."""


class OrderNotPaidYet(DomainError):
    """A fulfilment step arrived before the order was paid: retry later."""

    def __init__(self, order_sn):
        super().__init__(f"order {order_sn} is not paid yet")
        self.order_sn = order_sn


class NotificationRejected(DomainError):
    """A provider notification we refuse; ``reason`` is machine-readable."""

    def __init__(self, reason, detail=""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class ProviderError(DomainError):
    """The provider answered a request with an error (or not at all).

    ``code`` and ``sub_code`` are the provider's own (Alipay: ``40004`` and
    ``ACQ.TRADE_NOT_EXIST``); ``sub_code`` is empty when there was no answer.
    """

    def __init__(self, message, code="", sub_code=""):
        super().__init__(f"{sub_code or code or 'error'}: {message}" if (sub_code or code) else message)
        self.code = code
        self.sub_code = sub_code


class TradeNotFound(ProviderError):
    """The provider has no trade with this number (never opened, or not ours)."""
