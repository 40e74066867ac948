"""What every test shares: cheap demo passwords, and the Flask tutorial's fixtures, ``app``
(the shop on its embedded defaults in ``tmp_path``, with demo data), ``client`` and ``runner``.

A test or module that needs other settings says so with a marker; the closest one counts:

    pytestmark = pytest.mark.settings(OPERATOR_TOKEN="s3cret")

The folders say how fast their tests are. ``unit/`` is the domain in memory, milliseconds a
test: no network, no database, no worker (its races run a few threads against the in-memory
store; the entry-point tests install a small distribution into ``tmp_path``). ``workers/``
starts a Dramatiq worker in process: retries, backoff and time limits, in seconds. The rest
make a shop (a SQLite file, key pairs) or serve one on loopback; ``services/``, ``browser/``
and the tests marked ``mariadb`` or ``redis`` need servers and run in tox environments of
their own (tox.ini).
"""

import functools

import pytest
from support.shop import make_app
from werkzeug.security import generate_password_hash

from gmall_payment.adapters.sql import demo


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "settings(**overrides): the settings the ``app`` fixture's shop is made with"
    )


@pytest.fixture(autouse=True, scope="session")
def cheap_demo_passwords():
    """The demo members' passwords hashed with one round of PBKDF2 instead of scrypt (100 ms
    each, twice per shop the tests make, and again at each login). Logins still check them."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            demo,
            "generate_password_hash",
            functools.partial(generate_password_hash, method="pbkdf2:sha256:1"),
        )
        yield


@pytest.fixture
def app(request, tmp_path):
    """The embedded default shop with demo data (``make_app``), with the settings of the
    closest ``@pytest.mark.settings(...)``; its in-process worker stopped afterwards."""
    marker = request.node.get_closest_marker("settings")
    app = make_app(tmp_path, **(marker.kwargs if marker else {}))
    yield app
    app.extensions["gmall"].bus.close()  # its in-process worker, if a request started it


@pytest.fixture
def client(app):
    """A test client of ``app``: a browser with a cookie jar of its own."""
    return app.test_client()


@pytest.fixture
def runner(app):
    """``app``'s command line, as ``flask``/``gmall-payment`` would run it."""
    return app.test_cli_runner()
