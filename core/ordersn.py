"""Order numbers: made by whoever creates the order, before it exists, and never reused."""

import random
from datetime import datetime


def new_order_sn(now: datetime | None = None) -> str:
    """A time-ordered order number like the seed's ``IdWorker.getTimeId()``.

    Microseconds then six random digits: numbers sort by creation time, and two made in the
    same microsecond (two web workers, one flash-sale burst) still differ.
    """
    return (now or datetime.now()).strftime("%Y%m%d%H%M%S%f") + f"{random.randrange(10**6):06d}"
