"""The latch's contract, in process and on Redis: waits are bounded, an open latch lets
every waiter through, before and after it opened."""

import threading
import time

import pytest
from redis.connection import Connection

from gmall_payment.adapters.redis.latch import RedisLatch

KEY = "seckill:created:20241111200001000000123456"


def timed(work):
    started = time.monotonic()
    result = work()
    return result, time.monotonic() - started


def test_a_latch_never_opened_lets_the_waiter_go_after_the_timeout(latch):
    result, elapsed = timed(lambda: latch.wait(KEY, 0.3))
    assert result is False
    assert 0.25 <= elapsed < 1.0


def test_a_zero_timeout_never_blocks(latch):
    assert timed(lambda: latch.wait(KEY, 0))[1] < 0.2
    latch.open(KEY)
    assert latch.wait(KEY, 0) is True


def test_an_open_latch_lets_every_later_waiter_through_at_once(latch):
    latch.open(KEY)
    latch.open(KEY)  # opening twice is harmless

    for _ in range(3):
        result, elapsed = timed(lambda: latch.wait(KEY, 5))
        assert result is True and elapsed < 0.5
    assert latch.wait("seckill:created:another", 0.05) is False


def test_opening_wakes_every_waiter(latch):
    results = []
    waiters = [
        threading.Thread(target=lambda: results.append(timed(lambda: latch.wait(KEY, 5)))) for _ in range(4)
    ]
    for waiter in waiters:
        waiter.start()
    time.sleep(0.2)
    latch.open(KEY)
    for waiter in waiters:
        waiter.join(timeout=10)

    assert [result for result, _ in results] == [True] * 4
    assert all(0.1 < elapsed < 2 for _, elapsed in results)


@pytest.mark.redis
def test_a_redis_latch_expires(redis_client, redis_prefix):
    latch = RedisLatch(redis_client, redis_prefix, ttl=60)
    latch.open(KEY)
    assert redis_client.llen(redis_prefix + KEY) == 1
    assert 0 < redis_client.ttl(redis_prefix + KEY) <= 60


def test_opening_many_at_once_opens_each_and_no_other(latch):
    keys = [f"seckill:created:{n}" for n in range(50)]
    latch.open(*keys)
    latch.open()  # none: nothing to do

    assert all(latch.wait(key, 0) for key in keys)
    assert latch.wait("seckill:created:50", 0) is False


@pytest.mark.redis
def test_a_redis_latch_opens_a_batch_in_one_pipeline(redis_client, redis_prefix, monkeypatch):
    latch = RedisLatch(redis_client, redis_prefix, ttl=60)
    sent = []
    original = Connection.send_packed_command
    monkeypatch.setattr(
        Connection,
        "send_packed_command",
        lambda self, command, *args, **kw: sent.append(command) or original(self, command, *args, **kw),
    )

    latch.open(*(f"k{n}" for n in range(20)))
    round_trips = len(sent)

    assert round_trips <= 2  # redis-py checks the script is loaded (SCRIPT EXISTS), then sends all 20
    assert all(redis_client.llen(f"{redis_prefix}k{n}") == 1 for n in range(20))
