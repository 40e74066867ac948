"""The click's cache of session generations (adapters/session_cache.py): a member's next
clicks read nothing from the database, and yet a logout or a password change ends every copy
of the session at once, in every process: Redis announces it, and a process that cannot hear
Redis trusts no entry. Two shops on one database and one Redis namespace stand for two web
processes (each its own cache and subscription)."""

import logging
import os
import time
import uuid

import pytest
import redis
from support.forms import copied, log_out, logged_in, set_password
from support.mariadb import unavailable
from support.seckill_web import JSON
from support.services import PrivateRedis, wait_until
from support.shop import make_app

from gmall_payment.adapters import session_cache

pytestmark = pytest.mark.redis

#: A SKU with no sale: the click answers 404 while signed in, 401 once the session ended.
NOT_ON_SALE = 9999


@pytest.fixture
def redis_url():
    url = os.environ.get("GMALL_TEST_REDIS_URL")
    if not url:
        unavailable("GMALL_TEST_REDIS_URL is unset")
    return url


@pytest.fixture
def shops(tmp_path, redis_url):
    """``make(**settings)``: another shop on the one database and Redis namespace."""
    namespace = f"gmall-test-{uuid.uuid4().hex[:8]}"
    made = []

    def make(**settings):
        settings = {
            "REDIS_URL": redis_url,
            "REDIS_NAMESPACE": namespace,
            "OPERATOR_TOKEN": "t" * 32,
            **settings,
        }
        made.append(make_app(tmp_path, **settings))
        return made[-1]

    yield make
    for app in made:
        app.extensions["sessions"].close()
        app.extensions["gmall"].bus.close()


def cache(app):
    return app.extensions["sessions"]


def subscribed(app):
    """``app``'s cache, once subscribed (its entries trusted)."""
    cache(app).start()
    wait_until(lambda: cache(app).healthy, 10, "the session cache did not subscribe")
    return cache(app)


def counted_reads(app) -> list:
    """The member of each read of the database ``app``'s click makes from now on."""
    reads, read = [], cache(app).read
    cache(app).read = lambda member_id: reads.append(member_id) or read(member_id)
    return reads


def click(client) -> int:
    return client.get(f"/seckill/{NOT_ON_SALE}", headers=JSON).status_code


def test_a_members_next_clicks_read_no_generation(shops):
    shop = shops()
    subscribed(shop)
    demo, reads = logged_in(shop), counted_reads(shop)
    assert [click(demo) for _ in range(3)] == [404] * 3
    assert len(reads) == 1


def test_a_logout_in_the_process_ends_the_copy_at_once(shops):
    shop = shops()
    subscribed(shop)
    demo = logged_in(shop)
    thief = copied(shop, demo)
    assert click(thief) == 404  # remembered
    log_out(demo)
    assert click(thief) == 401


def test_a_logout_on_another_host_ends_the_copy_there_at_once(shops):
    here, there = shops(), shops()
    subscribed(there)
    demo = logged_in(here)
    thief, reads = copied(there, demo), counted_reads(there)
    assert [click(thief) for _ in range(2)] == [404] * 2 and len(reads) == 1

    log_out(demo)  # answered once Redis took the announcement: no waiting here

    assert click(thief) == 401


def test_a_password_changed_on_another_host_ends_the_copy_there_at_once(shops):
    here, there = shops(), shops()
    subscribed(there)
    thief = copied(there, logged_in(here))
    assert click(thief) == 404
    assert set_password(here, "demo", "a new secret").exit_code == 0
    assert click(thief) == 401


def test_a_logout_that_cannot_be_announced_ends_the_copy_here_and_says_so(shops, caplog):
    shop = shops()
    subscribed(shop)
    demo = logged_in(shop)
    thief = copied(shop, demo)
    assert click(thief) == 404

    def unreachable(member_id):
        raise redis.ConnectionError("Redis is away")

    cache(shop).channel.publish = unreachable
    with caplog.at_level(logging.WARNING):
        log_out(demo)

    assert click(thief) == 401
    assert "the end of member 1's sessions was not announced on Redis" in caplog.text


def test_a_generation_read_while_the_sessions_end_is_not_remembered(shops):
    """A click reads the old generation, another host's logout commits and its announcement
    drops the (not yet made) entry here, then the click would store the old one: it does not."""
    shop = shops()
    subscribed(shop)
    demo = logged_in(shop)
    cache(shop).channel.publish = lambda member_id: None  # only the drop: as the announcement applied
    read = cache(shop).read
    cache(shop).read = lambda member_id: (read(member_id), cache(shop).ended(member_id))[0]
    assert click(demo) == 404
    reads = counted_reads(shop)
    assert click(demo) == 404
    assert len(reads) == 1


def test_without_its_subscription_a_process_reads_every_click_and_a_logout_counts(shops, redis_url, caplog):
    here, there = shops(), shops()
    subscribed(there)
    demo = logged_in(here)
    thief, reads = copied(there, demo), counted_reads(there)
    assert click(thief) == 404
    channel = cache(there).channel
    subscribe = channel.subscribe

    def refused():
        raise redis.ConnectionError("not now")

    channel.subscribe = refused  # it cannot subscribe again until the test says so
    address = "{}:{}".format(*cache(there).subscription.socket.getsockname())
    admin = redis.Redis.from_url(redis_url)
    try:
        killed = [c["id"] for c in admin.client_list(_type="pubsub") if c["addr"] == address]
        assert len(killed) == 1
        admin.client_kill_filter(_id=killed[0])
    finally:
        admin.close()

    assert click(thief) == 404 and len(reads) == 2  # the connection's end found: nothing trusted
    assert click(thief) == 404 and len(reads) == 3
    assert "lost the subscription on Redis" in caplog.text
    log_out(demo)  # announced to nobody there
    assert click(thief) == 401

    channel.subscribe = subscribe
    subscribed(there)
    thief = copied(there, logged_in(here))
    assert [click(thief) for _ in range(2)] == [404] * 2 and len(reads) == 5  # remembered again


def test_a_silent_redis_counts_as_lost(shops, tmp_path, monkeypatch):
    """Redis stopped answering (a host cut off, no connection reset): no entry is trusted
    after SILENT_SECONDS."""
    monkeypatch.setattr(session_cache, "PING_SECONDS", 0.1)
    monkeypatch.setattr(session_cache, "SILENT_SECONDS", 0.5)
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        shop = shops(REDIS_URL=server.url)
        subscribed(shop)
        server.pause()
        try:
            wait_until(lambda: not cache(shop).healthy, 5, "a silent subscription was still trusted")
        finally:
            server.resume()
        subscribed(shop)  # and again once it answers
    finally:
        server.stop()


def test_an_entry_counts_for_session_cache_seconds_at_most(shops):
    shop = shops(SESSION_CACHE_SECONDS=1.0)
    subscribed(shop)
    demo, reads = logged_in(shop), counted_reads(shop)
    assert [click(demo) for _ in range(2)] == [404] * 2 and len(reads) == 1
    time.sleep(1.1)
    assert click(demo) == 404 and len(reads) == 2


@pytest.mark.parametrize("on_redis", [True, False], ids=["session-cache-seconds-0", "no-redis"])
def test_with_the_cache_off_every_click_reads_the_generation(shops, tmp_path, on_redis):
    shop = shops(SESSION_CACHE_SECONDS=0) if on_redis else make_app(tmp_path / "embedded")
    try:
        demo, reads = logged_in(shop), counted_reads(shop)
        assert [click(demo) for _ in range(3)] == [404] * 3
        assert len(reads) == 3 and cache(shop).subscriber is None
    finally:
        shop.extensions["gmall"].bus.close()
