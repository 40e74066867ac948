"""The sandboxes' ledger (mockpay's sandbox, the offline Alipay gateway): the states a trade goes
through, the rules both apply to it (the close at ``time_expire``, refunds), and the SQLite file
of the instance folder they keep their trades in.

A trade waits for its buyer (``WAIT``), is paid (``SUCCESS``) or closed (``CLOSED``): closed
unpaid when it is closed or its ``time_expire`` passes, closed paid once all of it is refunded.
A refund is made once per request number, only of a paid trade still open, never beyond what
was paid; the same number and amount again is the same refund (no money moves).

A sandbox's trades must outlive the shop's process: a payment made before a restart is still
refunded, queried and closed after it, and the CLI (another process) acts on the same trades.
One table of JSON documents by ``out_trade_no``; amounts and times are tagged in the JSON
(``{"$decimal": "12.30"}``, ``{"$datetime": "..."}``) so they come back exact, as Decimal
and datetime. Every change is one ``BEGIN IMMEDIATE`` transaction (SQLite serialises the
processes) under a lock (the threads of one process); with no path the file is in memory.
"""

import contextlib
import dataclasses
import json
import sqlite3
import threading
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from .alipay_protocol import TRADE_CLOSED, TRADE_SUCCESS, WAIT_BUYER_PAY

#: A sandbox trade's states: Alipay's trade_status values.
WAIT, SUCCESS, CLOSED = WAIT_BUYER_PAY, TRADE_SUCCESS, TRADE_CLOSED
#: Alipay's sub_codes for what the rules refuse, as the sandboxes answer them.
STATUS_ERROR = "ACQ.TRADE_STATUS_ERROR"  # not in the state the request needs
HAS_SUCCESS = "ACQ.TRADE_HAS_SUCCESS"  # opened again, but paid
HAS_CLOSE = "ACQ.TRADE_HAS_CLOSE"  # opened again or refunded, but closed
CONTEXT_INCONSISTENT = "ACQ.CONTEXT_INCONSISTENT"  # opened again with another amount or subject
DISCORDANT = "ACQ.DISCORDANT_REPEAT_REQUEST"  # one refund request number, two amounts
NOT_EQUAL_TOTAL = (
    "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"  # a refund with no request number of its own, not of the whole
)
FEE_ERR = "ACQ.REASON_TRADE_REFUND_FEE_ERR"  # a refund of more than is left


class LedgerTrade:
    """What the sandboxes' trades share; each is a dataclass with at least ``out_trade_no``,
    ``total_amount``, ``trade_status``, ``gmt_payment``, ``refunds`` (out_request_no -> Decimal)
    and ``time_expire``, and subclasses this."""

    @property
    def refunded(self) -> Decimal:
        return sum(self.refunds.values(), Decimal("0.00"))

    @property
    def paid(self) -> bool:
        return self.gmt_payment is not None

    def expired(self, now: datetime) -> bool:
        """Whether the trade still waits for its buyer at its ``time_expire`` or after: Alipay's
        timeout close, which the sandbox makes before it looks at the trade."""
        return self.trade_status == WAIT and self.time_expire is not None and now >= self.time_expire


class Refused(Exception):
    """What the rules refuse: Alipay's ``sub_code`` and what is wrong (``message``); each sandbox
    answers it in its own words."""

    def __init__(self, sub_code: str, message: str):
        super().__init__(f"{sub_code}: {message}")
        self.sub_code, self.message = sub_code, message


def check_reopen(trade: LedgerTrade, total_amount: Decimal, subject: str) -> None:
    """The shop opens the trade again (the shopper checks out once more): only while it waits for
    its buyer, and for the same amount and subject; else Refused."""
    if trade.trade_status != WAIT:
        raise Refused(
            HAS_SUCCESS if trade.paid else HAS_CLOSE, f"trade {trade.out_trade_no} is {trade.trade_status}"
        )
    if (trade.total_amount, trade.subject) != (total_amount, subject):
        raise Refused(
            CONTEXT_INCONSISTENT,
            f"trade {trade.out_trade_no} was opened for {trade.total_amount} ({trade.subject})",
        )


def check_close(trade: LedgerTrade) -> None:
    """A trade is closed on request only while it waits for its buyer; else Refused."""
    if trade.trade_status != WAIT:
        raise Refused(STATUS_ERROR, f"trade {trade.out_trade_no} is {trade.trade_status}")


def refunds_after(
    trade: LedgerTrade, amount: Decimal, request_no: str, whole_only: bool = False
) -> dict | None:
    """The trade's refunds once ``amount`` is refunded under ``request_no``; None when the request
    repeats one already made (no money moves); Refused when it may not be made.
    ``whole_only``: the request has no number of its own (Alipay's refund by out_trade_no), so
    it may refund only the whole amount. The trade closes once ``fully_refunded``."""
    repeated = trade.refunds.get(request_no)
    if repeated is not None:
        if repeated != amount:
            raise Refused(DISCORDANT, f"out_request_no {request_no} was for {repeated}, not {amount}")
        return None
    if not trade.paid:
        raise Refused(STATUS_ERROR, f"trade {trade.out_trade_no} is {trade.trade_status}")
    if trade.trade_status == CLOSED:
        raise Refused(HAS_CLOSE, f"trade {trade.out_trade_no} is {trade.trade_status}: all of it is refunded")
    if whole_only and amount != trade.total_amount:
        raise Refused(NOT_EQUAL_TOTAL, f"a refund without out_request_no is of all {trade.total_amount}")
    if trade.refunded + amount > trade.total_amount:
        raise Refused(FEE_ERR, f"refunds {trade.refunded} + {amount} exceed {trade.total_amount}")
    return {**trade.refunds, request_no: amount}


def fully_refunded(trade: LedgerTrade, refunds: dict) -> bool:
    """Whether ``refunds`` return all the trade's amount (then it closes)."""
    return sum(refunds.values(), Decimal("0.00")) == trade.total_amount


_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS trade (out_trade_no TEXT PRIMARY KEY, trade_no TEXT, record TEXT NOT NULL)"
)


def _tag(value):
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    raise TypeError(f"a sandbox trade cannot keep {type(value).__name__} {value!r}")


def _untag(document: dict):
    if document.keys() == {"$decimal"}:
        return Decimal(document["$decimal"])
    if document.keys() == {"$datetime"}:
        return datetime.fromisoformat(document["$datetime"])
    return document


class Trades:
    """The trades as one transaction sees them: ``get``, ``find`` (by trade_no), ``all`` and ``put``."""

    def __init__(self, connection: sqlite3.Connection, kind: type):
        self._connection, self._kind = connection, kind

    def _load(self, row) -> object | None:
        return None if row is None else self._kind(**json.loads(row[0], object_hook=_untag))

    def get(self, out_trade_no: str):
        return self._load(
            self._connection.execute(
                "SELECT record FROM trade WHERE out_trade_no = ?", (out_trade_no,)
            ).fetchone()
        )

    def find(self, trade_no: str):
        return self._load(
            self._connection.execute("SELECT record FROM trade WHERE trade_no = ?", (trade_no,)).fetchone()
        )

    def all(self) -> list:
        """Every trade, in the order they were first kept."""
        return [
            self._load(row) for row in self._connection.execute("SELECT record FROM trade ORDER BY rowid")
        ]

    def put(self, trade) -> None:
        record = json.dumps(dataclasses.asdict(trade), default=_tag, ensure_ascii=False)
        self._connection.execute(
            "INSERT OR REPLACE INTO trade (out_trade_no, trade_no, record) VALUES (?, ?, ?)",
            (trade.out_trade_no, trade.trade_no, record),
        )


class TradeFile:
    """Trades of the dataclass ``kind`` in the SQLite file ``path`` (None: in memory, this process only).

    ``answers``: the exceptions that are the sandbox's answer rather than a failure (a refusal):
    what the transaction changed before one is kept (a trade closed at its expiry stays closed
    though paying it is refused)."""

    def __init__(self, path: str | Path | None, kind: type, answers: tuple[type[BaseException], ...] = ()):
        self.path, self.kind, self.answers = path, kind, answers
        self._lock = threading.RLock()
        self._memory = self._connect(":memory:") if path is None else None  # the file: at the first trade

    @staticmethod
    def _connect(where: str) -> sqlite3.Connection:
        connection = sqlite3.connect(where, timeout=30, isolation_level=None, check_same_thread=False)
        connection.execute(_SCHEMA)
        return connection

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Trades]:
        """The trades, changed all at once or not at all (an exception rolls back)."""
        with self._lock:
            if self._memory is None:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            connection = self._memory or self._connect(str(self.path))
            try:
                connection.execute("BEGIN IMMEDIATE")
                try:
                    yield Trades(connection, self.kind)
                except self.answers:
                    connection.execute("COMMIT")
                    raise
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
                connection.execute("COMMIT")
            finally:
                if connection is not self._memory:
                    connection.close()
