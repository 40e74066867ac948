"""The offline gateway's bills: ``alipay.data.dataservice.bill.downloadurl.query`` and the file.

As Alipay does, the query (``bill_type`` trade, ``bill_date`` yyyy-MM-dd, a Beijing day) answers
``bill_download_url``, and that URL serves the zip of the day's 业务明细 (``bill_file``): every
trade of the gateway paid that day and every refund made that day. Alipay answers
``isp.bill_not_exist`` for a day whose bill is not made yet; this gateway makes one for any day
up to today, today's so far, so that a demo or a test need not wait for tomorrow.
"""

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from urllib.parse import parse_qs, urlencode, urlsplit

from . import bill_file
from .bill_file import REFUND, TRADE, Entry

BILL_QUERY = "alipay.data.dataservice.bill.downloadurl.query"
DOWNLOAD_PATH = "/bills/download"
BILL_TYPES = ("trade", "signcustomer")


class BillRefused(Exception):
    """A bill query the gateway refuses: Alipay's sub_code and message."""

    def __init__(self, sub_code: str, message: str):
        super().__init__(f"{sub_code}: {message}")
        self.sub_code, self.message = sub_code, message


def bill_day(biz: Mapping, today: date) -> date:
    """The day a bill query asks for; BillRefused for one the gateway has no bill of."""
    if biz.get("bill_type") not in BILL_TYPES:
        raise BillRefused(
            "isv.invalid-bill-type", f"bill_type {biz.get('bill_type')!r}: trade 或 signcustomer"
        )
    if biz["bill_type"] != "trade":
        raise BillRefused("isp.bill_not_exist", "账单不存在: 离线网关只出 trade 账单")
    try:
        day = datetime.strptime(str(biz.get("bill_date", "")), "%Y-%m-%d").date()
    except ValueError:
        raise BillRefused(
            "isv.invalid-bill-date", f"bill_date {biz.get('bill_date')!r}: 日账单格式为 yyyy-MM-dd"
        ) from None
    if day > today:
        raise BillRefused("isp.bill_not_exist", f"账单不存在: {day} 尚未结束")
    return day


def download_url(biz: Mapping, today: date, base: str) -> dict:
    """The query's answer: where the bill of the day asked for is downloaded (under ``base``,
    the gateway's own address; empty when it is called in process)."""
    day = bill_day(biz, today)
    query = urlencode(
        {"bizType": "trade", "billDate": f"{day:%Y-%m-%d}", "downloadFileName": f"{day:%Y%m%d}.csv.zip"}
    )
    return {"bill_download_url": f"{base}{DOWNLOAD_PATH}?{query}"}


def requested_day(url: str, today: date) -> date:
    """The day a download URL (as ``download_url`` made it) asks for; BillRefused for another."""
    values = parse_qs(urlsplit(url).query)
    return bill_day({"bill_type": "trade", "bill_date": (values.get("billDate") or [""])[0]}, today)


def entries(trades: Iterable, day: date) -> list[Entry]:
    """The lines of ``day``'s bill: trades paid then, refunds made then, in the order they happened."""
    found = []
    for trade in trades:
        common = dict(
            trade_no=trade.trade_no,
            out_trade_no=trade.out_trade_no,
            subject=trade.subject,
            created=trade.gmt_create,
            buyer=trade.buyer_logon_id,
        )
        if trade.gmt_payment is not None and trade.gmt_payment.date() == day:
            found.append(Entry(TRADE, finished=trade.gmt_payment, amount=trade.total_amount, **common))
        for request_no, amount in trade.refunds.items():
            made = trade.refund_times.get(request_no)
            if made is not None and made.date() == day:
                found.append(Entry(REFUND, finished=made, amount=amount, request_no=request_no, **common))
    return sorted(found, key=lambda entry: entry.finished)


def bill_zip(trades: Iterable, seller_id: str, day: date, now: datetime) -> tuple[str, bytes]:
    """The file's name and the zip of ``day``'s bill, exported ``now`` (Beijing)."""
    return f"{bill_file.file_stem(seller_id, day)}.csv.zip", bill_file.write(
        seller_id, day, entries(trades, day), now
    )
