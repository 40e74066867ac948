from datetime import datetime

from gmall_payment.core.ordersn import new_order_sn


def test_order_numbers_sort_by_time_and_differ_within_one_microsecond():
    now = datetime(2024, 11, 11, 0, 0, 0, 123456)
    same_instant = {new_order_sn(now) for _ in range(1000)}
    later = new_order_sn(datetime(2024, 11, 11, 0, 0, 0, 123457))

    assert len(same_instant) > 990  # six random digits: a clash in 1,000 draws is rare, not impossible
    assert all(sn.startswith("20241111000000123456") and len(sn) == 26 for sn in same_instant)
    assert all(sn < later for sn in same_instant)
