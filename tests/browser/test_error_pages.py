"""The shop's own error pages in a real browser (never Flask's bare ones), the favicon, and
login links without a stray "?"."""

import re

from support.browser import log_in


def test_an_unknown_page_or_order_is_the_shops_own_page(live_shop, page):
    _, base_url = live_shop
    log_in(page, base_url)
    for path, words in (
        ("/no-such-page", "您要找的页面或订单不存在"),
        ("/pay.html?orderToken=12345", "12345"),
    ):
        response = page.goto(base_url + path)
        assert response.status == 404, path
        assert page.locator("#error").get_attribute("data-code") == "404"
        assert page.locator("h1").inner_text() == "页面不存在"
        assert words in page.locator("#error-message").inner_text()
        assert "Not Found" not in page.content() and page.locator("link[rel=stylesheet]").count() == 1
        assert page.locator(".site-header a", has_text="我的订单").count() == 1  # a way on


def test_a_405_is_the_shops_page_too(live_shop, page):
    _, base_url = live_shop
    response = page.goto(f"{base_url}/logout")  # a POST-only address
    assert response.status == 405 and page.locator("h1").inner_text() == "不支持的请求"
    assert "Method Not Allowed" not in page.content()


def test_no_page_asks_for_something_missing_not_even_a_favicon(live_shop, page):
    _, base_url = live_shop
    missing = []
    page.on("response", lambda response: missing.append(response.url) if response.status >= 400 else None)
    log_in(page, base_url)
    for path in ("/orders", "/seckill", "/login"):
        page.goto(base_url + path)
        page.wait_for_load_state("networkidle")
    favicon = page.goto(f"{base_url}/favicon.ico")  # what browsers ask for by themselves
    assert favicon.status == 200 and favicon.headers["content-type"].startswith("image/svg+xml")
    assert missing == []


def test_login_links_carry_no_stray_question_mark(live_shop, page):
    _, base_url = live_shop
    page.goto(f"{base_url}/orders")
    assert page.url == f"{base_url}/login?next=/orders" or page.url == f"{base_url}/login?next=%2Forders"
    page.goto(f"{base_url}/pay.html?orderToken=1")
    assert re.search(r"next=(/|%2F)pay\.html(\?|%3F)orderToken(=|%3D)1$", page.url), page.url
