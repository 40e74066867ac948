"""Fields that every log line carries while a piece of work runs: the order and the payment
it is about, the step. Bound where the work starts (a step, a notification, a query), read
by the log formatter (``webapp/logs.py``), so a line deep in a store or a plugin says which
order it was about without every call site repeating it."""

import contextlib
import functools
from contextvars import ContextVar

_fields: ContextVar[tuple] = ContextVar("gmall_log_fields", default=())  # (key, value) pairs: immutable
_in_block: ContextVar[bool] = ContextVar("gmall_log_block", default=False)


@contextlib.contextmanager
def bound(**fields):
    """Add ``fields`` (those not None) to every log line written inside the block."""
    tokens = _set(fields), _in_block.set(True)
    try:
        yield
    finally:
        _fields.reset(tokens[0])
        _in_block.reset(tokens[1])


def scoped(function):
    """Run ``function`` in a ``bound`` block of its own: what it ``add``s goes with its return."""

    @functools.wraps(function)
    def in_block(*args, **kwargs):
        with bound():
            return function(*args, **kwargs)

    return in_block


def add(**fields) -> None:
    """Add ``fields`` to the lines of the rest of the innermost block, for what becomes known
    midway (the payment a notification is about); only inside one, or they would outlive it."""
    if not _in_block.get():
        raise RuntimeError("logfields.add outside a bound block")
    _set(fields)


def _set(fields):
    merged = {**dict(_fields.get()), **{key: value for key, value in fields.items() if value is not None}}
    return _fields.set(tuple(merged.items()))


def current() -> dict:
    return dict(_fields.get())
