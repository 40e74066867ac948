"""Helpers of the flash sale's web tests: a member signed in through the test client, the
sale page once the shop's own tick has preheated the demo sale."""

import time

from support.shop import csrf_token

SKU = 1004  # the demo's flash sale
JSON = {"Accept": "application/json"}
BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def login(app, username="demo", password="demo123"):
    client = app.test_client()
    client.post("/login", data={"username": username, "password": password,
                                "csrf_token": csrf_token(client.get("/login").text)})
    return client


def preheated(client, sku_id=SKU, timeout=5):
    """The sale page once the worker's tick has loaded the sale (the first request starts it)."""
    deadline = time.monotonic() + timeout
    while True:
        sale = next(s for s in client.get("/seckill", headers=JSON).json["sales"] if s["sku_id"] == sku_id)
        if sale["units_left"] is not None or time.monotonic() > deadline:
            return sale
        time.sleep(0.05)
