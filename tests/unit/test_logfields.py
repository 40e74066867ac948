"""``core.logfields``: fields added midway last to the end of their block, never beyond it."""

import pytest

from gmall_payment.core import logfields


@logfields.scoped
def handle(order_sn):
    logfields.add(order_sn=order_sn, payment_id=None)  # None: not known, not shown
    return logfields.current()


def test_what_a_scoped_call_adds_is_its_own():
    with logfields.bound(step="award_points"):
        assert handle("A1") == {"step": "award_points", "order_sn": "A1"}
        assert logfields.current() == {"step": "award_points"}
    assert logfields.current() == {}


def test_adding_outside_a_block_is_refused():
    with pytest.raises(RuntimeError, match="outside a bound block"):
        logfields.add(order_sn="A1")
    assert logfields.current() == {}
