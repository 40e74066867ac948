"""Fields that every log line carries while a piece of work runs: the order and the payment
it is about, the step. Bound where the work starts (a step, a notification, a query), read
by the log formatter (``webapp/logs.py``), so a line deep in a store or a plugin says which
order it was about without every call site repeating it."""

import contextlib
from contextvars import ContextVar

_fields: ContextVar[tuple] = ContextVar("gmall_log_fields", default=())  # (key, value) pairs: immutable


@contextlib.contextmanager
def bound(**fields):
    """Add ``fields`` (those not None) to every log line written inside the block."""
    merged = {**dict(_fields.get()), **{key: value for key, value in fields.items() if value is not None}}
    token = _fields.set(tuple(merged.items()))
    try:
        yield
    finally:
        _fields.reset(token)


def current() -> dict:
    return dict(_fields.get())
