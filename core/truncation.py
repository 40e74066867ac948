"""Texts kept within a column's bytes, never cut silently: the head of the text and a mark.

The notify log keeps what providers said as evidence; a body longer than its column holds
would fail the insert (MariaDB) or, cut without a word, pass for all there was.
"""

import logging
import re
from dataclasses import replace

from .model import NotificationRecord

log = logging.getLogger(__name__)

#: What follows the head of a text that did not fit (a form body never holds a raw newline).
MARK = "\n[truncated: {kept} of {size} bytes kept]"
_MARKED = re.compile(r"\n\[truncated: \d+ of \d+ bytes kept\]\Z")


def fit(text: str | None, max_bytes: int) -> str | None:
    """``text`` if its UTF-8 fits in ``max_bytes``, else its head and ``MARK``, in ``max_bytes``."""
    if text is None:
        return None
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    room = max_bytes - len(MARK.format(kept=max_bytes, size=len(data)).encode("utf-8"))
    head = data[:room].decode("utf-8", "ignore")  # never half a character
    return head + MARK.format(kept=len(head.encode("utf-8")), size=len(data))


def truncated(text: str) -> bool:
    """Whether ``text`` is what ``fit`` kept of a longer one."""
    return _MARKED.search(text) is not None


def fit_record(record: NotificationRecord, max_bytes: int) -> NotificationRecord:
    """``record`` with its raw body and detail fitted to ``max_bytes``; a cut body is logged."""
    raw = fit(record.raw, max_bytes)
    if raw != record.raw:
        log.warning(
            "%s %s for %s (%s): its raw body of %s bytes is kept truncated to %s bytes",
            record.provider,
            record.source,
            record.out_trade_no or "-",
            record.outcome,
            len(record.raw.encode("utf-8")),
            max_bytes,
        )
    return replace(record, raw=raw, detail=fit(record.detail, max_bytes))
