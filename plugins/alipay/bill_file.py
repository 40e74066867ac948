"""Alipay's trade bill file (业务明细), written and read as Alipay makes it.

``alipay.data.dataservice.bill.downloadurl.query`` (bill_type ``trade``) answers a URL of a zip
(``<account>_<yyyymmdd>.csv.zip``) holding two CSV files in GBK, their names in GBK too (the zip
does not mark them UTF-8):

- ``<account>_<yyyymmdd>_业务明细.csv``: ``#`` lines above (title, account, period, the list's
  start), the column names, one line per trade (业务类型 交易) or refund (退款), then ``#`` lines
  below (the list's end, the trades' and refunds' totals, when it was exported). Identifiers
  end in a tab, so that a spreadsheet keeps their digits; a refund's amounts are negative.
- ``<account>_<yyyymmdd>_业务明细(汇总).csv``: the day's totals.

The account is the seller's id and ``0156``; times are Beijing's. ``read`` checks the totals
against the lines, and reads the columns by their names.
"""

import csv
import io
import json
import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from ...core.bills import REFUND, TRADE, Bill, BillLine
from ...core.errors import InvalidAmount, ProviderError
from ...core.money import format_amount, to_amount
from ..alipay_protocol import TIME_FORMAT
from .client import BEIJING

ENCODING = "gbk"
DETAIL_TITLE, SUMMARY_TITLE = "#支付宝业务明细查询", "#支付宝业务汇总查询"
DETAIL_START = f"#{'-' * 41}业务明细列表{'-' * 40}"
DETAIL_END = f"#{'-' * 41}业务明细列表结束{'-' * 36}"
SUMMARY_START = f"#{'-' * 41}业务汇总列表{'-' * 40}"
SUMMARY_END = f"#{'-' * 40}业务汇总列表结束{'-' * 37}"
COLUMNS = (
    "支付宝交易号",
    "商户订单号",
    "业务类型",
    "商品名称",
    "创建时间",
    "完成时间",
    "门店编号",
    "门店名称",
    "操作员",
    "终端号",
    "对方账户",
    "订单金额（元）",
    "商家实收（元）",
    "支付宝红包（元）",
    "集分宝（元）",
    "支付宝优惠（元）",
    "商家优惠（元）",
    "券核销金额（元）",
    "券名称",
    "商家红包消费金额（元）",
    "卡消费金额（元）",
    "退款批次号/请求号",
    "服务费（元）",
    "分润（元）",
    "备注",
)
SUMMARY_COLUMNS = (
    "门店编号",
    "门店名称",
    "交易订单总笔数",
    "退款订单总笔数",
    "订单金额（元）",
    "商家实收（元）",
    "支付宝优惠（元）",
    "商家优惠（元）",
    "卡消费金额（元）",
    "服务费（元）",
    "分润（元）",
    "实收净额（元）",
)
#: The columns written with a tab after them (identifiers, and the columns Alipay pads so).
TABBED = frozenset(
    {
        "支付宝交易号",
        "商户订单号",
        "业务类型",
        "门店编号",
        "门店名称",
        "操作员",
        "终端号",
        "对方账户",
        "商家红包消费金额（元）",
        "退款批次号/请求号",
    }
)
KINDS = {"交易": TRADE, "退款": REFUND}
ZERO = "0.00"
DAY_FORMAT = "%Y年%m月%d日 %H:%M:%S"
PERIOD = re.compile(r"#起始日期：\[(?P<starts>[^\]]+)\]\s+终止日期：\[(?P<ends>[^\]]+)\]")
TRADE_TOTAL = re.compile(r"#交易合计：(?P<count>\d+)笔，商家实收共(?P<amount>-?[\d.]+)元")
REFUND_TOTAL = re.compile(r"#退款合计：(?P<count>\d+)笔，商家实收退款共(?P<amount>-?[\d.]+)元")


@dataclass(frozen=True)
class Entry:
    """A line to write: a trade paid or a refund made (``amount`` positive), Beijing times."""

    kind: str
    trade_no: str
    out_trade_no: str
    subject: str
    created: datetime
    finished: datetime
    amount: Decimal
    buyer: str = ""
    request_no: str = ""


def account(seller_id: str) -> str:
    """The account a bill names: the seller's id and ``0156``, as Alipay writes it."""
    return f"{seller_id}0156"


def file_stem(seller_id: str, day: date) -> str:
    return f"{account(seller_id)}_{day:%Y%m%d}"


# writing (the offline gateway)


def write(seller_id: str, day: date, entries: Sequence[Entry], exported: datetime) -> bytes:
    """The zip Alipay serves for the bill of ``day`` (Beijing): the two GBK files."""
    stem = file_stem(seller_id, day)
    head = _head(seller_id, day)
    files = {
        f"{stem}_业务明细.csv": _detail(DETAIL_TITLE, head, entries, exported),
        f"{stem}_业务明细(汇总).csv": _summary(SUMMARY_TITLE, head, entries, exported),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(_GbkName(name), text.encode(ENCODING))
    return buffer.getvalue()


class _GbkName(zipfile.ZipInfo):
    """A zip entry whose name is written in GBK, without the UTF-8 mark, as Alipay's are."""

    def __init__(self, name: str):
        super().__init__(name, date_time=(1980, 1, 1, 0, 0, 0))
        self.compress_type = zipfile.ZIP_DEFLATED

    def _encodeFilenameFlags(self):  # zipfile's hook for a name's bytes and flags
        return self.filename.encode(ENCODING), self.flag_bits & ~0x800


def _head(seller_id: str, day: date) -> list[str]:
    starts = datetime.combine(day, datetime.min.time())
    return [
        f"#账号：[{account(seller_id)}]",
        f"#起始日期：[{starts:{DAY_FORMAT}}]   终止日期：[{starts + timedelta(days=1):{DAY_FORMAT}}]",
    ]


def _csv(rows: Iterable[Iterable[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


def _lines(*lines: str) -> str:
    return "".join(f"{line}\r\n" for line in lines)


def _signed(entry: Entry) -> str:
    return format_amount(-entry.amount if entry.kind == REFUND else entry.amount)


def _row(entry: Entry) -> list[str]:
    values = {
        "支付宝交易号": entry.trade_no,
        "商户订单号": entry.out_trade_no,
        "业务类型": "交易" if entry.kind == TRADE else "退款",
        "商品名称": entry.subject,
        "创建时间": f"{entry.created:{TIME_FORMAT}}",
        "完成时间": f"{entry.finished:{TIME_FORMAT}}",
        "对方账户": entry.buyer,
        "订单金额（元）": _signed(entry),
        "商家实收（元）": _signed(entry),
        "退款批次号/请求号": entry.request_no,
        "备注": entry.subject,
    }
    money = {name for name in COLUMNS if name.endswith("（元）")}
    return [
        values.get(name, ZERO if name in money else "") + ("\t" if name in TABBED else "") for name in COLUMNS
    ]


def _total(entries: Sequence[Entry], kind: str) -> tuple[int, str]:
    chosen = [entry for entry in entries if entry.kind == kind]
    total = sum((entry.amount for entry in chosen), Decimal("0.00"))
    return len(chosen), format_amount(-total if kind == REFUND else total)


def _detail(title: str, head: list[str], entries: Sequence[Entry], exported: datetime) -> str:
    trades, trade_amount = _total(entries, TRADE)
    refunds, refund_amount = _total(entries, REFUND)
    return (
        _lines(title, *head, DETAIL_START)
        + _csv([COLUMNS, *(_row(entry) for entry in entries)])
        + _lines(
            DETAIL_END,
            f"#交易合计：{trades}笔，商家实收共{trade_amount}元，商家优惠共0.00元",
            f"#退款合计：{refunds}笔，商家实收退款共{refund_amount}元，商家优惠退款共0.00元",
            f"#导出时间：[{exported:{DAY_FORMAT}}]",
        )
    )


def _summary(title: str, head: list[str], entries: Sequence[Entry], exported: datetime) -> str:
    trades, trade_amount = _total(entries, TRADE)
    refunds, refund_amount = _total(entries, REFUND)
    net = format_amount(Decimal(trade_amount) + Decimal(refund_amount))
    total = ["合计", "", str(trades), str(refunds), net, net, ZERO, ZERO, ZERO, ZERO, ZERO, net]
    return (
        _lines(title, *head, SUMMARY_START)
        + _csv([SUMMARY_COLUMNS, total])
        + _lines(SUMMARY_END, f"#导出时间：[{exported:{DAY_FORMAT}}]")
    )


# reading (the provider)


def read(data: bytes, provider: str, day: date) -> Bill:
    """The ``Bill`` of the zip ``data`` for ``day``; ProviderError when it is not such a bill
    (not a zip, no 业务明细 in it, its columns, period or totals not as Alipay writes them)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        texts = [archive.read(info).decode(ENCODING) for info in archive.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, UnicodeDecodeError, OSError) as error:
        raise ProviderError(f"the bill of {day} is not a zip of GBK files: {error}") from None
    details = [text for text in texts if text.lstrip("\ufeff").startswith(DETAIL_TITLE)]
    if len(details) != 1:
        raise ProviderError(f"the bill of {day} holds {len(details)} 业务明细 files, not one")
    lines = details[0].lstrip("\ufeff").splitlines()
    starts, ends = _period(lines, day)
    body, footer = _between(lines, DETAIL_START, DETAIL_END, day)
    rows = list(csv.reader(body))
    if not rows:
        raise ProviderError(f"the bill of {day} has no column names")
    header = [cell.strip() for cell in rows[0]]
    missing = [
        name
        for name in (
            "支付宝交易号",
            "商户订单号",
            "业务类型",
            "完成时间",
            "订单金额（元）",
            "商家实收（元）",
            "退款批次号/请求号",
        )
        if name not in header
    ]
    if missing:
        raise ProviderError(f"the bill of {day} lacks the columns {', '.join(missing)}")
    parsed = [_line(header, row, day) for row in rows[1:] if any(cell.strip() for cell in row)]
    _check_totals(footer, parsed, day)
    return Bill(provider, day, starts, ends, tuple(line for line, _ in parsed))


def _period(lines: list[str], day: date) -> tuple[datetime, datetime]:
    for line in lines:
        found = PERIOD.match(line)
        if found:
            try:
                starts, ends = (datetime.strptime(found[name], DAY_FORMAT) for name in ("starts", "ends"))
            except ValueError:
                break
            if starts.date() != day:
                raise ProviderError(f"asked for the bill of {day}, got the one of {starts:%Y-%m-%d}")
            return shop_time(starts), shop_time(ends)
    raise ProviderError(f"the bill of {day} says no period (#起始日期：[...] 终止日期：[...])")


def shop_time(beijing: datetime) -> datetime:
    """A Beijing wall-clock time as the shop's clock has it (naive local time)."""
    return beijing.replace(tzinfo=BEIJING).astimezone().replace(tzinfo=None)


def _between(lines: list[str], start: str, end: str, day: date) -> tuple[list[str], list[str]]:
    """The lines between the list's start and end markers, and those after its end."""
    marks = [line.strip() for line in lines]
    if start not in marks or end not in marks or marks.index(end) < marks.index(start):
        raise ProviderError(f"the bill of {day} lacks its list's start or end line")
    return lines[marks.index(start) + 1 : marks.index(end)], lines[marks.index(end) + 1 :]


def _line(header: list[str], row: list[str], day: date) -> tuple[BillLine, Decimal]:
    """A row as a ``BillLine``, and what the merchant received by it (商家实收, signed)."""
    if len(row) != len(header):
        raise ProviderError(f"the bill of {day}: a line has {len(row)} cells, the columns are {len(header)}")
    cells = {name: cell.strip() for name, cell in zip(header, row, strict=True)}
    kind = KINDS.get(cells["业务类型"], cells["业务类型"])
    try:
        amount = _unsigned(cells["订单金额（元）"])
        received = Decimal(cells["商家实收（元）"])
        finished = datetime.strptime(cells["完成时间"], TIME_FORMAT) if cells["完成时间"] else None
    except (InvalidAmount, InvalidOperation, ValueError) as error:
        raise ProviderError(f"the bill of {day}: line of {cells['商户订单号']}: {error}") from None
    line = BillLine(
        kind=kind,
        out_trade_no=cells["商户订单号"],
        trade_no=cells["支付宝交易号"],
        amount=amount,
        finished_at=shop_time(finished) if finished else None,
        request_no=cells["退款批次号/请求号"],
        raw=json.dumps(cells, ensure_ascii=False),
    )
    return line, received


def _unsigned(text: str) -> Decimal:
    return to_amount(text[1:] if text.startswith("-") else text)


def _check_totals(footer: list[str], parsed: list[tuple[BillLine, Decimal]], day: date) -> None:
    """The totals under the list must be those of its lines: else the file is not whole."""
    for pattern, kind in ((TRADE_TOTAL, TRADE), (REFUND_TOTAL, REFUND)):
        found = next((m for m in map(pattern.match, footer) if m), None)
        if found is None:
            raise ProviderError(f"the bill of {day} lacks its {kind} total line")
        received = [amount for line, amount in parsed if line.kind == kind]
        if (int(found["count"]), Decimal(found["amount"])) != (len(received), sum(received, Decimal("0.00"))):
            raise ProviderError(
                f"the bill of {day}: its {kind} total says {found['count']} lines of {found['amount']}, "
                f"its lines are {len(received)} of {sum(received, Decimal('0.00'))}"
            )
