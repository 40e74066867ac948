"""Words of Alipay's notification protocol, shared by the providers that speak it."""

from ..core.model import TradeStatus

#: Alipay's trade_status values, in our words.
TRADE_STATUSES = {
    "TRADE_SUCCESS": TradeStatus.PAID,
    "TRADE_FINISHED": TradeStatus.PAID,
    "TRADE_CLOSED": TradeStatus.CLOSED,
    "WAIT_BUYER_PAY": TradeStatus.PENDING,
}
#: What the shop answers: ``success`` stops the provider's retries, anything else does not.
ACCEPTED, REFUSED = "success", "failure"
#: The format of notify_time, gmt_payment, timestamp... (Beijing time, for Alipay).
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
