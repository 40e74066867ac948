"""The browser tests' Chromium and windows, for the conftest of each folder of browser tests
(tests/browser, the WeChat Pay distribution's), which imports these fixtures and the report hook.

Never `playwright install`: the browser is /usr/bin/chromium (GMALL_TEST_CHROMIUM), which
`.ci/run` installs with apt. Without it these tests skip locally and fail in CI
(GMALL_REQUIRE_SERVICES=1). Every page a test opens comes from ``open_window``: when the test
fails, each leaves a screenshot and its HTML in BROWSER_ARTIFACTS (default
`.artifacts/browser/`), named after the test.
"""

import os
import re
from pathlib import Path

import pytest

from support.mariadb import unavailable

CHROMIUM = os.environ.get("GMALL_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("BROWSER_ARTIFACTS", ".artifacts/browser"))
#: Chromium as root, headless, with nothing reaching out of this machine.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.stash[_failed] = report.failed
    return report


_failed = pytest.StashKey[bool]()


@pytest.fixture(scope="session")
def browser():
    try:
        from playwright.sync_api import sync_playwright  # the `browser` extra; only these tests need it
    except ImportError:
        unavailable("playwright is not installed (pip install -e '.[browser]', or tox -e browser)")
    if not os.path.exists(CHROMIUM):
        unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


#: A test's window unless it asks for another: a desktop in Chinese.
WINDOW = {"viewport": {"width": 1280, "height": 900}, "locale": "zh-CN"}


@pytest.fixture
def open_window(request, browser):
    """``open_window(**context_options)``: a page in a fresh browser context, ``WINDOW`` with
    the options. Every test's page comes from here, so every one (the tabs it opens too) collects
    its console messages in ``page.console_messages`` and, when the test fails, leaves its
    screenshot and HTML in ARTIFACTS. The contexts close after the test."""
    contexts = []

    def open_window(**options):
        context = browser.new_context(**{**WINDOW, **options})
        context.on("page", _listen)
        contexts.append(context)
        return context.new_page()

    yield open_window
    if request.node.stash.get(_failed, False):
        _save(request.node.nodeid, [page for context in contexts for page in context.pages])
    for context in contexts:
        context.close()


@pytest.fixture
def page(open_window):
    """A desktop window's page (``open_window``)."""
    return open_window()


def _listen(page):
    page.console_messages = []
    page.on("console", lambda message: page.console_messages.append(f"{message.type}: {message.text}"))


def _save(nodeid, pages):
    """A screenshot and the HTML of each page, named after the test (and numbered if several)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    stem = ARTIFACTS / re.sub(r"[^\w.-]+", "_", nodeid)
    for number, page in enumerate(pages, 1):
        name = stem if len(pages) == 1 else f"{stem}-{number}"
        try:
            page.screenshot(path=f"{name}.png", full_page=True)
            Path(f"{name}.html").write_text(page.content(), encoding="utf-8")
            print(f"browser artifacts: {name}.png, {name}.html")
        except Exception as error:  # the page itself may be what broke; the test's own failure is reported
            print(f"browser artifacts of {page.url} not saved: {error}")
