"""Helpers of the tests of the click's cache of ended sessions (adapters/session_cache.py):
a shop's cache, subscribed; the database reads its clicks make; a click."""

import contextlib
import uuid

from support.seckill_web import JSON
from support.services import wait_until
from support.shop import make_app

#: A SKU with no sale: the click answers 404 while signed in, 401 once the session ended.
NOT_ON_SALE = 9999


@contextlib.contextmanager
def shops_on(tmp_path, redis_url, **common):
    """``make(**settings)``: another shop on one database (in ``tmp_path``) and one Redis
    namespace on ``redis_url``, each standing for a web process; all closed afterwards."""
    common = {
        "REDIS_URL": redis_url,
        "REDIS_NAMESPACE": f"gmall-test-{uuid.uuid4().hex[:8]}",
        "OPERATOR_TOKEN": "t" * 32,
        **common,
    }
    made = []

    def make(**settings):
        made.append(make_app(tmp_path, **{**common, **settings}))
        return made[-1]

    try:
        yield make
    finally:
        for app in made:
            app.extensions["sessions"].close()
            app.extensions["gmall"].bus.close()


def cache(app):
    return app.extensions["sessions"]


def subscribed(app):
    """``app``'s cache, once subscribed and loaded (trusted)."""
    cache(app).start()
    wait_until(lambda: cache(app).healthy, 10, "the session cache did not subscribe")
    return cache(app)


class Reads(list):
    """The member of each generation ``read`` makes from now on (``then(member)`` after each);
    its loads of the ended sessions go on as they were."""

    def __init__(self, read, then=None):
        super().__init__()
        self.read, self.then = read, then

    def __call__(self, member_id):
        self.append(member_id)
        generation = self.read(member_id)
        if self.then is not None:
            self.then(member_id)
        return generation

    def __getattr__(self, name):
        return getattr(self.read, name)


def counted_reads(app, then=None) -> Reads:
    """The member of each read of the database ``app``'s click makes from now on."""
    cache(app).read = Reads(cache(app).read, then)
    return cache(app).read


def click(client) -> int:
    return client.get(f"/seckill/{NOT_ON_SALE}", headers=JSON).status_code
