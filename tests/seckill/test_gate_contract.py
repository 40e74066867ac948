"""The reservation gate's contract, rule by rule, in process and on Redis; then what only
the Redis gate can show: its keys, its round trips, a key Redis lost."""

import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
import redis
from redis.connection import Connection
from redis.crc import key_slot
from support.races import race

from gmall_payment.adapters.redis.seckill import RedisReservationGate
from gmall_payment.core.ordersn import new_order_sn
from gmall_payment.core.seckill import Click, ClickLimits, InvalidSale, Outcome, RateLimit, Sale

from .conftest import REDIS, REDIS_CLUSTER, make_gate

SKU = 1001
START = datetime(2024, 11, 11, 20, 0, 0)
OPEN = START + timedelta(seconds=1, microseconds=123456)
END = START + timedelta(hours=1)
IP = "192.0.2.10"


def a_sale(units=10, sale_id=7, sku_id=SKU):
    return Sale(sku_id, "华为 Mate 60 秒杀", Decimal("4999.00"), units, START, END, id=sale_id)


@pytest.fixture
def loaded(gate):
    """The gate holding sale 7 of SKU 1001 with 10 units."""
    assert gate.preheat(a_sale(), 10) is True
    return gate


def click(gate, member_id, now=OPEN, sku_id=SKU, ip=IP) -> Click:
    return gate.reserve(sku_id, member_id, new_order_sn(now), now, ip)


# preheating


def test_preheat_loads_once_and_never_refills(loaded):
    assert click(loaded, 1).outcome is Outcome.RESERVED
    assert loaded.preheat(a_sale(), 10) is False
    assert loaded.units_left(SKU) == 9


def test_preheat_refuses_another_sale_of_the_sku(loaded):
    with pytest.raises(InvalidSale, match="unload it first"):
        loaded.preheat(a_sale(sale_id=8), 5)
    assert loaded.units_left(SKU) == 10


def test_units_left_is_none_when_not_on_sale(gate):
    assert gate.units_left(SKU) is None


# the click, rule by rule


def test_a_sku_never_loaded_is_not_on_sale_and_stays_missing(gate):
    assert click(gate, 1) == Click(Outcome.NOT_ON_SALE)
    assert gate.give_back(SKU, 1, "whatever") is False
    assert gate.units_left(SKU) is None
    assert gate.take(SKU, "creator", 10, 30) == []


def test_an_unloaded_sku_is_not_on_sale_and_a_give_back_does_not_refill_it(loaded):
    bought = click(loaded, 1)
    loaded.ack(SKU, loaded.take(SKU, "creator", 10, 30))
    assert loaded.unload(SKU, 7) is True

    assert loaded.give_back(SKU, 1, bought.order_sn) is False
    assert click(loaded, 2) == Click(Outcome.NOT_ON_SALE)
    assert loaded.units_left(SKU) is None


def test_not_started_before_the_start_reserved_from_it(loaded):
    assert click(loaded, 1, now=START - timedelta(microseconds=1)) == Click(Outcome.NOT_STARTED)
    assert click(loaded, 1, now=START).outcome is Outcome.RESERVED


def test_ended_from_the_end(loaded):
    assert click(loaded, 1, now=END) == Click(Outcome.ENDED)
    assert click(loaded, 1, now=END - timedelta(microseconds=1)).outcome is Outcome.RESERVED


def test_a_member_reserves_once_and_is_told_the_first_order(loaded):
    first = click(loaded, 1)
    again = click(loaded, 1)

    assert first.outcome is Outcome.RESERVED and len(first.order_sn) == 26
    assert again == Click(Outcome.ALREADY_BOUGHT, first.order_sn)
    assert loaded.units_left(SKU) == 9
    assert [r.order_sn for r in loaded.take(SKU, "creator", 10, 30)] == [first.order_sn]


def test_sold_out_when_no_unit_is_left(gate):
    gate.preheat(a_sale(units=2), 2)
    first, second = click(gate, 1), click(gate, 2)

    assert click(gate, 3) == Click(Outcome.SOLD_OUT)
    assert gate.units_left(SKU) == 0
    assert click(gate, 1) == Click(Outcome.ALREADY_BOUGHT, first.order_sn)  # still told their order
    assert {r.member_id for r in gate.take(SKU, "creator", 10, 30)} == {1, 2}
    assert second.outcome is Outcome.RESERVED


def test_preheating_zero_units_sells_nothing(gate):
    gate.preheat(a_sale(), 0)
    assert click(gate, 1) == Click(Outcome.SOLD_OUT)


def test_the_reservation_is_handed_off_with_everything_the_order_needs(loaded):
    now = START + timedelta(minutes=3, microseconds=654321)
    order_sn = loaded.reserve(SKU, 42, "202411112003000654321000001", now, IP).order_sn

    [reservation] = loaded.take(SKU, "creator", 10, 30)
    assert (reservation.order_sn, reservation.member_id, reservation.sku_id, reservation.sale_id) == (
        order_sn,
        42,
        SKU,
        7,
    )
    assert reservation.reserved_at == now
    assert reservation.deliveries == 1 and reservation.receipt


def test_skus_are_independent(loaded):
    loaded.preheat(a_sale(units=1, sale_id=9, sku_id=2002), 1)
    assert click(loaded, 1, sku_id=2002).outcome is Outcome.RESERVED
    assert click(loaded, 1).outcome is Outcome.RESERVED
    assert (loaded.units_left(2002), loaded.units_left(SKU)) == (0, 9)


# giving back


def test_give_back_returns_the_unit_and_frees_the_member_once(loaded):
    bought = click(loaded, 1)

    assert loaded.give_back(SKU, 1, "another order") is False
    assert loaded.give_back(SKU, 2, bought.order_sn) is False
    assert loaded.units_left(SKU) == 9
    assert loaded.give_back(SKU, 1, bought.order_sn) is True
    assert loaded.give_back(SKU, 1, bought.order_sn) is False
    assert loaded.units_left(SKU) == 10

    again = click(loaded, 1)
    assert again.outcome is Outcome.RESERVED and again.order_sn != bought.order_sn
    assert loaded.give_back(SKU, 1, bought.order_sn) is False  # the old order no longer speaks for the member
    assert loaded.units_left(SKU) == 9


def test_held_names_the_members_order_until_the_unit_comes_back(loaded):
    assert loaded.held(SKU, 1) is None and loaded.held(2002, 1) is None  # nothing held, a SKU not on sale
    bought = click(loaded, 1)
    assert loaded.held(SKU, 1) == bought.order_sn and loaded.held(SKU, 2) is None
    assert loaded.give_back(SKU, 1, bought.order_sn) is True
    assert loaded.held(SKU, 1) is None


# handing reservations to order creators


def test_take_hands_out_each_reservation_once_until_acknowledged(loaded):
    sns = [click(loaded, member).order_sn for member in range(1, 6)]

    first = loaded.take(SKU, "a", 3, 30)
    second = loaded.take(SKU, "b", 3, 30)
    assert [r.order_sn for r in first + second] == sns
    assert loaded.take(SKU, "c", 3, 30) == []  # all handed out, none idle for 30 s

    loaded.ack(SKU, first)
    assert loaded.unload(SKU, 7) is False  # the second batch still waits for its orders
    loaded.ack(SKU, second)
    assert loaded.take(SKU, "c", 10, 0) == []
    assert loaded.unload(SKU, 8) is False  # not that sale
    assert loaded.unload(SKU, 7) is True


def test_a_crashed_creators_reservations_go_to_another_creator(loaded):
    sns = [click(loaded, member).order_sn for member in range(1, 4)]
    crashed = loaded.take(SKU, "crashed", 10, 30)  # and never acknowledged
    newer = click(loaded, 9).order_sn

    reclaimed = loaded.take(SKU, "survivor", 10, claim_after=0)
    assert [r.order_sn for r in reclaimed] == [*sns, newer]  # the stale first, then the new
    assert [r.deliveries for r in reclaimed] == [2, 2, 2, 1]
    assert [r.receipt for r in reclaimed[:3]] == [r.receipt for r in crashed]

    loaded.ack(SKU, reclaimed)
    assert loaded.take(SKU, "anyone", 10, claim_after=0) == []


def test_unload_refuses_while_a_reservation_was_never_handed_out(loaded):
    click(loaded, 1)
    assert loaded.unload(SKU, 7) is False
    assert loaded.units_left(SKU) == 9


# rate limits, counted in the same step


@pytest.fixture(params=["inprocess", REDIS, REDIS_CLUSTER])
def limited(request):
    """The gate of ``loaded``, limiting each member to 2 clicks and each address to 5 a minute."""
    gate = make_gate(request.param, request, ClickLimits(member=(RateLimit(2, 60),), ip=(RateLimit(5, 60),)))
    gate.preheat(a_sale(), 10)
    return gate


def test_a_member_over_the_limit_is_turned_away_before_the_checks_and_takes_nothing(limited):
    answers = [click(limited, 1).outcome for _ in range(3)]
    turned_away = click(limited, 1)

    assert answers == [Outcome.RESERVED, Outcome.ALREADY_BOUGHT, Outcome.RATE_LIMITED]
    assert turned_away.order_sn is None and 55 <= turned_away.retry_after <= 60
    assert click(limited, 2).outcome is Outcome.RESERVED  # another member, the same address: its 5th click
    assert click(limited, 3).outcome is Outcome.RATE_LIMITED  # the address is over its limit now
    assert click(limited, 3, ip="198.51.100.7").outcome is Outcome.RESERVED
    assert limited.units_left(SKU) == 7
    assert {r.member_id for r in limited.take(SKU, "creator", 100, 30)} == {1, 2, 3}


def test_a_click_sent_again_is_told_it_reserved_and_counts_once(limited):
    now = OPEN
    order_sn = new_order_sn(now)
    answers = [limited.reserve(SKU, 1, order_sn, now, IP) for _ in range(3)]  # a retry, then another

    assert answers == [Click(Outcome.RESERVED, order_sn)] * 3  # never "already bought" for its own click
    assert limited.units_left(SKU) == 9 and [r.order_sn for r in limited.take(SKU, "creator", 100, 30)] == [
        order_sn
    ]
    assert click(limited, 1) == Click(Outcome.ALREADY_BOUGHT, order_sn)  # the member's second click, counted
    assert click(limited, 1).outcome is Outcome.RATE_LIMITED


def test_limits_count_per_sale(limited):
    limited.preheat(a_sale(sale_id=8, sku_id=SKU + 1), 5)
    for _ in range(2):
        click(limited, 1)

    assert click(limited, 1).outcome is Outcome.RATE_LIMITED
    assert click(limited, 1, sku_id=SKU + 1).outcome is Outcome.RESERVED


@pytest.mark.parametrize("kind", ["inprocess", REDIS, REDIS_CLUSTER])
def test_a_window_over_lets_the_member_click_again(kind, request):
    gate = make_gate(kind, request, ClickLimits(member=(RateLimit(1, 1),)))
    gate.preheat(a_sale(), 10)
    first = click(gate, 1)
    refused = click(gate, 1)
    time.sleep(1.05)

    assert (first.outcome, refused) == (Outcome.RESERVED, Click(Outcome.RATE_LIMITED, retry_after=1))
    assert click(gate, 1) == Click(Outcome.ALREADY_BOUGHT, first.order_sn)


# under a burst


def test_a_burst_of_clicks_reserves_each_unit_once_and_no_member_twice(loaded):
    threads, clicks_each, members = 50, 40, 25

    def shopper(n):
        clicks = []
        for i in range(clicks_each):
            member = (n + i) % members + 1
            clicks.append((member, click(loaded, member)))
        return clicks

    results = [
        result for clicks in race(threads, shopper, timeout=60) for result in clicks
    ]  # raises any error
    reserved = [(member, c.order_sn) for member, c in results if c.outcome is Outcome.RESERVED]
    outcomes = Counter(c.outcome for _, c in results)
    assert len(results) == threads * clicks_each
    assert len(reserved) == 10 and len({m for m, _ in reserved}) == 10
    assert set(outcomes) == {Outcome.RESERVED, Outcome.ALREADY_BOUGHT, Outcome.SOLD_OUT}
    assert loaded.units_left(SKU) == 0
    assert {(r.member_id, r.order_sn) for r in loaded.take(SKU, "creator", 100, 30)} == set(reserved)


# Redis only


@pytest.fixture
def redis_gate(redis_client, redis_prefix):
    """On Redis, every click counting against limits it stays far below."""
    gate = RedisReservationGate(
        redis_client,
        redis_prefix,
        ClickLimits(member=(RateLimit(100, 1), RateLimit(1000, 60)), ip=(RateLimit(1000, 1),)),
    )
    gate.preheat(a_sale(), 10)
    return gate


@pytest.mark.redis
def test_every_key_of_a_sku_is_in_one_cluster_slot(redis_gate, redis_client, redis_prefix):
    click(redis_gate, 1, ip="2001:db8::{1}")
    keys = [*redis_gate.keys(SKU), *redis_client.scan_iter(match=f"{redis_prefix}*clicks*")]
    assert len(keys) == 3 + 3 and all(redis_client.exists(key) for key in keys)
    assert {key_slot(key.encode()) for key in keys} == {key_slot(b"{seckill:1001}")}
    assert key_slot(redis_gate.keys(SKU + 1)[0].encode()) != key_slot(keys[0].encode())


@pytest.mark.redis
def test_a_prefix_with_braces_is_refused(redis_client):
    with pytest.raises(ValueError):
        RedisReservationGate(redis_client, "shop{1}:")


def sent_commands(monkeypatch) -> list[bytes]:
    """The names of the commands every Redis connection sends from now on."""
    sent = []
    original = Connection.send_packed_command

    def send(self, command, *args, **kwargs):
        packed = b"".join(command) if isinstance(command, list) else command
        sent.append(packed.split(b"\r\n")[2])
        return original(self, command, *args, **kwargs)

    monkeypatch.setattr(Connection, "send_packed_command", send)
    return sent


@pytest.mark.redis
def test_a_click_is_one_round_trip(redis_gate, redis_client, monkeypatch):
    click(redis_gate, 1)  # the script is loaded now
    sent = sent_commands(monkeypatch)

    assert click(redis_gate, 2).outcome is Outcome.RESERVED
    assert click(redis_gate, 2).outcome is Outcome.ALREADY_BOUGHT
    assert sent == [b"EVALSHA", b"EVALSHA"]


@pytest.mark.redis
def test_connections_opened_ahead_serve_a_burst_that_opens_none(redis_gate, redis_client, monkeypatch):
    redis_gate.open_connections(4)
    idle = list(redis_gate._reserve._idle)
    assert len(idle) == 4 and all(connection._sock is not None for connection in idle)
    opened = []
    make = redis_client.connection_pool.make_connection
    monkeypatch.setattr(redis_client.connection_pool, "make_connection", lambda: opened.append(1) or make())
    with ThreadPoolExecutor(4) as clicking:
        outcomes = list(clicking.map(lambda member: click(redis_gate, member).outcome, range(1, 5)))
    assert outcomes == [Outcome.RESERVED] * 4
    assert opened == [] and set(redis_gate._reserve._idle) <= set(idle)
    redis_gate.open_connections(2)  # enough wait already: none more
    assert len(redis_gate._reserve._idle) <= 4


@pytest.mark.redis
def test_a_click_after_redis_lost_its_scripts_and_its_connections_still_reserves(
    redis_gate, redis_client, monkeypatch
):
    click(redis_gate, 1)
    host, port = redis_gate._reserve._idle[-1]._sock.getsockname()
    redis_client.script_flush()  # as a restart does...
    redis_client.client_kill(f"{host}:{port}")  # ...to the click's connection
    sent = sent_commands(monkeypatch)

    assert click(redis_gate, 2).outcome is Outcome.RESERVED
    # broken, sent again on a new connection, refused (no script), loaded, sent
    assert [c for c in sent if c in (b"EVALSHA", b"SCRIPT")] == [
        b"EVALSHA",
        b"EVALSHA",
        b"SCRIPT",
        b"EVALSHA",
    ]
    assert redis_gate.units_left(SKU) == 8


@pytest.mark.redis
def test_a_sale_key_redis_lost_is_not_on_sale_and_never_refilled(redis_gate, redis_client):
    bought = click(redis_gate, 1)
    redis_client.delete(redis_gate.keys(SKU)[0])  # evicted, or lost in a restart without persistence

    assert redis_gate.give_back(SKU, 1, bought.order_sn) is True  # the member is freed...
    assert not redis_client.exists(redis_gate.keys(SKU)[0])  # ...but no unit comes back into a lost sale
    assert click(redis_gate, 2, now=OPEN) == Click(Outcome.NOT_ON_SALE)
    assert redis_gate.units_left(SKU) is None


@pytest.mark.redis
def test_a_click_that_reaches_the_script_past_its_deadline_takes_nothing_and_counts_nothing(
    redis_client, redis_prefix
):
    late = RedisReservationGate(
        redis_client, redis_prefix, ClickLimits(member=(RateLimit(1, 60),)), timeout=0
    )
    late.preheat(a_sale(), 10)

    assert click(late, 1) == Click(Outcome.UNAVAILABLE, retry_after=1)  # its shopper is told 503
    assert (
        late.units_left(SKU) == 10 and late.held(SKU, 1) is None and late.take(SKU, "creator", 10, 30) == []
    )
    assert list(redis_client.scan_iter(match=f"{redis_prefix}*clicks*")) == []  # not even counted
    on_time = RedisReservationGate(redis_client, redis_prefix, ClickLimits(member=(RateLimit(1, 60),)))
    assert click(on_time, 1).outcome is Outcome.RESERVED


@pytest.mark.redis
def test_a_hand_off_that_fails_inside_the_script_takes_no_unit_and_records_no_member(
    redis_gate, redis_client
):
    _, buyers, pending = redis_gate.keys(SKU)
    redis_client.delete(pending)
    redis_client.set(pending, "not a stream")  # XADD, the script's first write, now fails

    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        click(redis_gate, 1)
    assert redis_gate.units_left(SKU) == 10
    assert not redis_client.exists(buyers)


@pytest.mark.redis
def test_concurrent_clicks_use_no_more_connections_than_clicks_at_once(redis_gate):
    def shopper(n):
        for _ in range(20):
            click(redis_gate, n + 1)

    race(8, shopper)

    assert 1 <= len(redis_gate._reserve._idle) <= 8
    assert redis_gate.units_left(SKU) == 2


@pytest.mark.redis
def test_after_a_fork_the_click_uses_connections_of_its_own(redis_gate, monkeypatch):
    click(redis_gate, 1)
    parents = list(redis_gate._reserve._idle)
    child = os.getpid() + 1
    monkeypatch.setattr(os, "getpid", lambda: child)  # what a forked worker would see

    assert click(redis_gate, 2).outcome is Outcome.RESERVED
    assert len(redis_gate._reserve._idle) == 1 and redis_gate._reserve._idle[0] not in parents


@pytest.mark.redis
def test_sales_on_a_cluster_spread_over_its_primaries_and_sell_on_each(request, cluster_client):
    gate = make_gate("redis-cluster", request)
    gate.open_connections(4)  # what each gunicorn worker does first: a cluster's client opens its own
    skus = range(2001, 2013)
    for number, sku_id in enumerate(skus):
        assert gate.preheat(a_sale(units=3, sale_id=100 + number, sku_id=sku_id), 3) is True
    primaries = {cluster_client.get_node_from_key(gate.keys(sku_id)[0]).name for sku_id in skus}
    assert len(primaries) >= 2, "twelve SKUs all on one primary: the test shows no spread"
    for sku_id in skus:
        assert click(gate, 1, sku_id=sku_id).outcome is Outcome.RESERVED
        assert click(gate, 1, sku_id=sku_id).outcome is Outcome.ALREADY_BOUGHT
        assert gate.units_left(sku_id) == 2
