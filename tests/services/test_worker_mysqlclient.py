"""The dramatiq workers on mysqlclient (``mysql+mysqldb``), the web on PyMySQL: the same
database, every order fulfilled exactly once (docs/deployment.md#the-workers)."""

import importlib.util
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from support.mariadb import unavailable

pytestmark = pytest.mark.services


def test_workers_on_mysqlclient_fulfil_every_order_exactly_once(make_shop):
    if importlib.util.find_spec("MySQLdb") is None:
        unavailable("mysqlclient is not installed: pip install -e '.[mysqlclient]' (tox -e services does)")
    shop = make_shop()
    orders = shop.arrange(100)
    url = make_url(shop.settings["DATABASE_URL"]).set(drivername="mysql+mysqldb")
    worker = shop.worker(threads=8, DATABASE_URL=url.render_as_string(hide_password=False))
    worker.start()

    answers = shop.notify_all([o.order_sn for o in orders])

    assert answers == ["success"] * 100
    shop.wait_fulfilled(100)
    shop.assert_fulfilled_exactly_once()
    processes = [worker.process.pid, *_children(worker.process.pid)]
    assert any("libmariadb" in Path(f"/proc/{pid}/maps").read_text() for pid in processes), (
        "no worker process loaded mysqlclient's libmariadb"
    )


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
