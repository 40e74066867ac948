"""The WeChat Pay distribution's tests run from the shop's checkout, beside its tests (setup.cfg
puts tests/ on the path, for support.shop); this folder goes there too, for wechat_support.
Its browser tests take the shop's Chromium and windows (support/browser_fixtures.py)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support.browser_fixtures import browser, open_window, pytest_runtest_makereport  # noqa: F401
from support.shop import served_shop
from wechat_support import SETTINGS


@pytest.fixture
def live(tmp_path):
    """The embedded shop served on loopback with the offline WeChat Pay gateway: (app, base_url)."""
    with served_shop(tmp_path, **SETTINGS) as shop:
        yield shop
