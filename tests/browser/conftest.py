"""Browser tests: the shop on a real loopback server, driven by Playwright in Debian's Chromium
(support/browser_fixtures.py: the browser, its windows, their screenshots when a test fails).
"""

from pathlib import Path

import pytest
from support.browser_fixtures import browser, open_window, page, pytest_runtest_makereport  # noqa: F401
from support.shop import served_shop


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.browser)


@pytest.fixture
def live_shop(request, tmp_path):
    """(app, base_url): the embedded default shop with demo data, served on a free port, with the
    settings of the closest ``@pytest.mark.settings(...)``."""
    marker = request.node.get_closest_marker("settings")
    with served_shop(tmp_path, **(marker.kwargs if marker else {})) as served:
        yield served
