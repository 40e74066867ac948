"""What the browser tests share beyond their fixtures (tests/browser/conftest.py)."""

import os
import re
from pathlib import Path

#: Where screenshots go: docs/screenshots/ with GMALL_WRITE_SCREENSHOTS=1 (the README's, to
#: commit), else the browser artifacts folder.
SCREENSHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    if os.environ.get("GMALL_WRITE_SCREENSHOTS") == "1"
    else Path(os.environ.get("BROWSER_ARTIFACTS", ".artifacts/browser")) / "screenshots"
)
#: Each image stays small enough for the repository.
MAX_BYTES = 200_000


def log_in(page, base_url, username="demo", password="demo123"):
    """Log in through the login form, as a shopper does; lands on "my orders"."""
    page.goto(f"{base_url}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/orders$"))


def open_cashier(page, base_url, order_sn, on_pay_page=False):
    """From the order's pay.html (opened unless ``on_pay_page``), choose mockpay: its cashier."""
    if not on_pay_page:
        page.goto(f"{base_url}/pay.html?orderToken={order_sn}")
    page.get_by_role("button", name=re.compile("mockpay")).click()
    page.wait_for_url(re.compile(r".*/mockpay/cashier.*"))
    assert page.locator("#out_trade_no").inner_text() == order_sn


def fits(page) -> bool:
    """No horizontal scroll: the page is no wider than the window."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def shoot(page, name) -> Path:
    """A screenshot of the window as it is, ``SCREENSHOTS/<name>.png``, to be looked at by people."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=path)
    assert path.stat().st_size < MAX_BYTES, f"{path} is {path.stat().st_size} bytes"
    return path
