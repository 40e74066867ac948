"""How the pages (and the CLI) show times, money and statuses to people.

Shared by the storefront and the operator pages as Jinja filters (``register``):

- ``local_time``: a time as people read it in the shop's zone (``TIMEZONE``, e.g.
  ``2024-11-11 20:00:05``); the shop's clock is naive server-local time (``datetime.now``), so a
  naive time (or its ISO text, as the JSON views carry it) is read as the server's and converted;
- ``money``: ``¥1,999.00`` from a Decimal or its text, never through float;
- ``status_name``: ``"refunded"`` -> ``"已退款 refunded"`` for payments, orders and refunds
  (``status_name("order")``), and ``status_label`` for plain text ("refunded (已退款)");
  the Chinese names are the domain's (``core.model.CHINESE_NAMES``).

The CLI shows times with ``shop_time`` (the running app's TIMEZONE).
"""

from datetime import datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app

from ..core.model import CHINESE_NAMES, OrderStatus, PaymentStatus, RefundStatus

DEFAULT_TIMEZONE = "Asia/Shanghai"

#: Chinese names of each kind's statuses, by their enum names in lower case (as the views carry them).
STATUS_NAMES = {
    kind: {status.name.lower(): name for status, name in CHINESE_NAMES[enum].items()}
    for kind, enum in (("payment", PaymentStatus), ("order", OrderStatus), ("refund", RefundStatus))
}


def zone(name: str | None) -> ZoneInfo:
    """The zone ``TIMEZONE`` names; ValueError (naming the setting) when there is none of that name."""
    try:
        return ZoneInfo(name or DEFAULT_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"TIMEZONE {name!r} is no IANA time zone (e.g. {DEFAULT_TIMEZONE})") from None


def local_time(value, tz: ZoneInfo | None = None, seconds: bool = True) -> str:
    """``value`` (datetime or ISO text; naive means the server's local time) in ``tz``; "—" for none."""
    if not value:
        return "—"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    shown = moment.astimezone(tz or zone(None))
    return shown.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def money(value) -> str:
    """``¥1,999.00``; text that is no amount is shown as it is."""
    if value is None or value == "":
        return "—"
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        return str(value)
    return f"¥{amount:,.2f}"


def status_chinese(status: str | None, kind: str = "payment") -> str:
    return STATUS_NAMES.get(kind, {}).get(str(status or "").lower(), "")


def status_name(status: str | None, kind: str = "payment") -> str:
    """``已退款 refunded`` (the Chinese name first, as shoppers and operators read it)."""
    chinese = status_chinese(status, kind)
    shown = str(status or "—").lower().replace("_", " ")
    return f"{chinese} {shown}" if chinese else shown


def status_label(status: str | None, kind: str = "payment") -> str:
    """``refunded (已退款)``, for the CLI's lines."""
    chinese = status_chinese(status, kind)
    shown = str(status or "—").lower().replace("_", " ")
    return f"{shown} ({chinese})" if chinese else shown


def shop_time(value) -> str:
    """``local_time`` in the running app's TIMEZONE (for the CLI, inside an app context)."""
    return local_time(value, zone(current_app.config.get("TIMEZONE")))


def register(app) -> None:
    """The filters on ``app``'s templates, with its TIMEZONE (checked now)."""
    tz = zone(app.config.get("TIMEZONE"))
    app.jinja_env.filters.update(
        local_time=lambda value, seconds=True: local_time(value, tz, seconds),
        money=money,
        status_name=status_name,
        status_label=status_label,
    )
    app.jinja_env.globals["shop_timezone"] = tz.key
