"""The click's knowledge of ended sessions (adapters/session_cache.py): a member whose sessions
did not end within a cookie's lifetime clicks without a read of the database, not even the
first click, and yet a logout or a password change ends every copy of the session at once, in
every process: Redis announces it, each process loads the ended sessions from the database when
it subscribes and every SESSION_CACHE_SECONDS, and a process that cannot hear Redis or load
them trusts nothing. Two shops on one database and one Redis namespace stand for two web
processes (each its own cache and subscription)."""

import logging
import os
import threading
import time

import pytest
import redis
from prometheus_client import REGISTRY
from sqlalchemy import update
from support.forms import copied, log_out, logged_in, set_password
from support.mariadb import unavailable
from support.services import PrivateRedis, wait_until
from support.session_cache import cache, click, counted_reads, shops_on, subscribed
from support.shop import make_app

from gmall_payment.adapters import session_cache
from gmall_payment.adapters.sql.models import Member, db

pytestmark = pytest.mark.redis


@pytest.fixture
def redis_url():
    url = os.environ.get("GMALL_TEST_REDIS_URL")
    if not url:
        unavailable("GMALL_TEST_REDIS_URL is unset")
    return url


@pytest.fixture
def shops(tmp_path, redis_url):
    """``make(**settings)``: another shop on the one database and Redis namespace."""
    with shops_on(tmp_path, redis_url) as make:
        yield make


@pytest.fixture
def quick(monkeypatch):
    """The subscriber pings and checks its load ten times a second."""
    monkeypatch.setattr(session_cache, "PING_SECONDS", 0.1)
    monkeypatch.setattr(session_cache, "SILENT_SECONDS", 0.5)


def unannounced(app):
    """``app``'s announcements of ended sessions fail from now on (Redis unreachable then)."""

    def unreachable(member_id):
        raise redis.ConnectionError("Redis is away")

    cache(app).channel.publish = unreachable


def test_a_member_whose_sessions_did_not_end_clicks_without_a_read(shops):
    shop = shops()
    subscribed(shop)
    demo, reads = logged_in(shop), counted_reads(shop)
    assert [click(demo) for _ in range(3)] == [404] * 3
    assert reads == []  # the first click too


def test_sessions_ended_before_the_process_subscribed_are_loaded(shops):
    here, there = shops(), shops()
    demo = logged_in(here)
    thief = copied(there, demo)
    log_out(demo)  # announced while no one there listens
    subscribed(there)
    reads = counted_reads(there)
    assert click(thief) == 401
    assert reads == []  # known from the load: the member and their generation
    assert click(logged_in(there)) == 404 and reads == []  # the new session is current


def test_a_logout_in_the_process_ends_the_copy_at_once(shops):
    shop = shops()
    subscribed(shop)
    demo = logged_in(shop)
    thief = copied(shop, demo)
    assert click(thief) == 404  # remembered
    log_out(demo)
    assert click(thief) == 401


def test_a_logout_by_a_process_from_before_revision_0010_is_loaded(shops):
    """During the deploy of 0010 an older process moves the generation and writes no time."""
    here, there = shops(), shops()
    demo = logged_in(here)
    thief = copied(there, demo)
    with here.app_context():
        db.session.execute(
            update(Member).where(Member.id == 1).values(session_epoch=Member.session_epoch + 1)
        )
        db.session.commit()
    subscribed(there)
    reads = counted_reads(there)
    assert click(thief) == 401 and reads == []


def test_a_logout_on_another_host_ends_the_copy_there_at_once(shops):
    here, there = shops(), shops()
    subscribed(there)
    demo = logged_in(here)
    thief, reads = copied(there, demo), counted_reads(there)
    assert [click(thief) for _ in range(2)] == [404] * 2 and reads == []

    log_out(demo)  # answered once Redis took the announcement: no waiting here

    assert click(thief) == 401 and len(reads) == 1  # announced: its generation read once
    fresh = logged_in(here)
    assert [click(copied(there, fresh)) for _ in range(2)] == [404] * 2 and len(reads) == 1


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

    unannounced(shop)
    with caplog.at_level(logging.WARNING):
        log_out(demo)

    assert click(thief) == 401
    assert "the end of member 1's sessions was not announced on Redis" in caplog.text


def test_a_generation_read_while_the_sessions_end_is_not_remembered(shops):
    """A click reads an announced member's generation, another host's logout commits and its
    announcement arrives here, then the click would keep the old one: it does not."""
    shop = shops()
    subscribed(shop)
    demo = logged_in(shop)
    cache(shop).channel.publish = lambda member_id: None  # only what an announcement does here
    cache(shop).ended(1)  # demo's: their generation is read on the next click
    raced = counted_reads(shop, then=cache(shop).ended)  # each read overtaken by an announcement
    assert [click(demo) for _ in range(2)] == [404] * 2
    assert len(raced) == 2  # not kept: read again
    cache(shop).read = raced.read
    reads = counted_reads(shop)
    assert [click(demo) for _ in range(2)] == [404] * 2
    assert len(reads) == 1  # unraced: kept


def test_without_its_subscription_a_process_reads_every_click_and_a_logout_counts(shops, redis_url, caplog):
    here, there = shops(), shops()
    subscribed(there)
    demo = logged_in(here)
    thief, reads = copied(there, demo), counted_reads(there)
    assert click(thief) == 404 and reads == []
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

    assert click(thief) == 404 and len(reads) == 1  # the connection's end found: nothing trusted
    assert click(thief) == 404 and len(reads) == 2
    assert "lost the subscription on Redis" in caplog.text
    log_out(demo)  # announced to nobody there
    assert click(thief) == 401 and len(reads) == 3

    channel.subscribe = subscribe
    subscribed(there)  # and loaded: the logout is known there now
    assert click(thief) == 401 and len(reads) == 3
    fresh = copied(there, logged_in(here))
    assert [click(fresh) for _ in range(2)] == [404] * 2 and len(reads) == 3


def test_a_silent_redis_counts_as_lost(shops, tmp_path, quick):
    """Redis stopped answering (a host cut off, no connection reset): nothing is trusted
    after SILENT_SECONDS."""
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


def test_a_logout_announced_to_no_one_ends_the_copy_elsewhere_within_session_cache_seconds(
    shops, quick, caplog
):
    here, there = shops(SESSION_CACHE_SECONDS=1.0), shops(SESSION_CACHE_SECONDS=1.0)
    subscribed(there)
    demo = logged_in(here)
    thief = copied(there, demo)
    assert click(thief) == 404

    unannounced(here)
    log_out(demo)
    ended = time.monotonic()
    assert "was not announced on Redis" in caplog.text

    wait_until(lambda: click(thief) == 401, 5, "the next load did not find the logout")
    # SESSION_CACHE_SECONDS, a ping and the load; the machine may be slow, but not 3 s slow
    assert time.monotonic() - ended < 1.0 + 3


@pytest.mark.parametrize("how", ["fails", "hangs"])
def test_a_load_that_fails_or_hangs_stops_the_trust(shops, quick, caplog, how):
    shop = shops(SESSION_CACHE_SECONDS=0.5)
    subscribed(shop)
    demo = logged_in(shop)
    released = threading.Event()

    def unreachable(since):
        if how == "hangs":
            released.wait(10)
        raise ConnectionError("the database is away")

    cache(shop).read.ended_since = unreachable
    try:
        wait_until(lambda: not cache(shop).healthy, 5, "a cache that could not load was still trusted")
        reads = counted_reads(shop)
        assert click(demo) == 404 and len(reads) == 1  # the database decides
    finally:
        released.set()
    wait_until(
        lambda: "cannot load the ended sessions (the database is away)" in caplog.text, 5, "no warning"
    )


def test_too_many_ended_sessions_to_keep_are_not_trusted(shops, monkeypatch, caplog):
    monkeypatch.setattr(session_cache, "ENTRIES", 0)
    shop = shops()
    log_out(logged_in(shop))  # one member's sessions ended: more than 0
    demo = logged_in(shop)
    cache(shop).start()
    wait_until(lambda: "1 members, over 0" in caplog.text, 10, "the load did not say why")
    reads = counted_reads(shop)
    assert not cache(shop).healthy and click(demo) == 404 and len(reads) == 1


@pytest.mark.parametrize("on_redis", [True, False], ids=["session-cache-seconds-0", "no-redis"])
def test_with_the_cache_off_every_click_reads_the_generation(shops, tmp_path, on_redis):
    shop = shops(SESSION_CACHE_SECONDS=0) if on_redis else make_app(tmp_path / "embedded")
    try:
        demo, reads = logged_in(shop), counted_reads(shop)
        assert [click(demo) for _ in range(3)] == [404] * 3
        assert len(reads) == 3 and cache(shop).subscriber is None
    finally:
        shop.extensions["gmall"].bus.close()


def test_a_logout_heard_while_the_ended_sessions_load_is_kept(shops):
    """The load read the database before a logout committed, and a click heard its announcement
    meanwhile: the load does not put the old generation back."""
    here, there = shops(), shops()
    demo = logged_in(here)
    thief = copied(there, demo)
    load = cache(there).read.ended_since

    def overtaken(since):
        loaded = load(since)
        log_out(demo)
        wait_until(lambda: cache(there).healthy is False and 1 in cache(there).announced, 5, "not heard")
        return loaded

    cache(there).read.ended_since = overtaken
    subscribed(there)
    assert click(thief) == 401


def test_a_session_newer_than_what_a_process_knows_is_read_not_refused(shops):
    """A member's generation known here, then a logout Redis could not announce and a new login
    elsewhere: the new cookie's generation is past what is known here, so it is read, not
    refused until the next load."""
    here, there = shops(), shops()
    subscribed(there)
    demo = logged_in(here)
    log_out(demo)  # announced: there reads the member's generation on their next click
    assert click(copied(there, logged_in(here))) == 404
    unannounced(here)  # the next logout is announced to no one
    log_out(logged_in(here))
    reads = counted_reads(there)

    assert click(copied(there, logged_in(here))) == 404
    assert len(reads) == 1


def checks():
    """How many session checks this process answered so far, by answer (gmall_session_checks)."""
    return {
        answer: REGISTRY.get_sample_value("gmall_session_checks_total", {"answer": answer}) or 0
        for answer in ("trusted", "kept", "read", "untrusted")
    }


def test_each_check_is_counted_by_how_it_was_answered(shops):
    shop, off = shops(), shops(SESSION_CACHE_SECONDS=0)
    subscribed(shop)
    demo, elsewhere = logged_in(shop), logged_in(off)
    cache(shop).channel.publish = lambda member_id: None  # only what an announcement does here
    before = checks()
    click(demo)
    cache(shop).ended(1)  # demo's sessions ended: read on the next click, then kept
    click(demo)
    click(demo)
    click(elsewhere)
    after = checks()
    assert {answer: after[answer] - before[answer] for answer in after} == {
        "trusted": 1,
        "read": 1,
        "kept": 1,
        "untrusted": 1,
    }
