"""Helpers of the flash sale's web tests: the sale page once the shop's own tick has preheated
the demo sale (a member logged in is ``support.forms.logged_in``)."""

import time

from support.forms import logged_in as login  # noqa: F401 (the name tests written before log_in import)

SKU = 1004  # the demo's flash sale
JSON = {"Accept": "application/json"}
BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
#: A browser following a link of the shop's own page (a click reserves only then).
FROM_THE_SHOP = {**BROWSER, "Sec-Fetch-Site": "same-origin"}


def preheated(client, sku_id=SKU, timeout=5):
    """The sale page once the worker's tick has loaded the sale (the first request starts it)."""
    deadline = time.monotonic() + timeout
    while True:
        sale = next(s for s in client.get("/seckill", headers=JSON).json["sales"] if s["sku_id"] == sku_id)
        if sale["units_left"] is not None or time.monotonic() > deadline:
            return sale
        time.sleep(0.05)


def lose(gate, sku_id):
    """What a Redis restarted empty leaves of the SKU's sale in ``gate``: nothing."""
    if hasattr(gate, "client"):
        gate.client.delete(*gate.keys(sku_id))
    else:
        del gate._skus[sku_id]
