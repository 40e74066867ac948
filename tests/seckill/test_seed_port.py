"""The benchmark's baseline is the seed's design, faults included: these tests show them."""

import importlib.util
import json
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.redis

_spec = importlib.util.spec_from_file_location(
    "seed_seckill", Path(__file__).parents[2] / "benchmarks" / "seed_seckill.py"
)
seed_seckill = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(seed_seckill)

SKU = 1001


@pytest.fixture
def seed(redis_client, redis_prefix):
    seed = seed_seckill.SeedSeckill(redis_client, redis_prefix)
    seed.stock(SKU, 3)
    return seed


def test_one_shopper_buys_again_and_again(seed):
    assert [seed.kill(1, SKU)[0] for _ in range(4)] == [True, True, True, False]


def test_a_vanished_semaphore_is_set_to_the_full_stock_again(seed, redis_client, redis_prefix):
    sold = sum(seed.kill(member, SKU)[0] for member in range(1, 4))
    redis_client.delete(f"{redis_prefix}sec:semaphore:{SKU}")  # expired, evicted, or lost in a restart

    sold += sum(seed.kill(member, SKU)[0] for member in range(4, 7))
    assert sold == 6  # 3 units, 6 orders
    assert redis_client.llen(redis_prefix + seed_seckill.QUEUE) == 6


def test_a_click_is_four_round_trips_and_a_publish(seed, redis_client, monkeypatch):
    seed.kill(1, SKU)  # the scripts are loaded now
    sent = []
    execute = redis_client.execute_command
    monkeypatch.setattr(
        redis_client, "execute_command", lambda *args, **kw: sent.append(args[0]) or execute(*args, **kw)
    )

    ok, message = seed.kill(2, SKU)
    assert ok and message.startswith("秒杀成功,订单号:")
    assert sent == ["GET", "EVALSHA", "EVALSHA", "EVALSHA", "LPUSH"]
    assert seed.kill(None, SKU) == (False, "请登录后再试!")
    assert seed.kill(3, 2002) == (False, "秒杀结束!")


def test_the_pay_step_waits_until_the_order_exists_with_no_bound(seed, redis_client, redis_prefix):
    seed.kill(1, SKU)
    order_sn = json.loads(redis_client.lindex(redis_prefix + seed_seckill.QUEUE, 0))["orderToken"]
    payer = threading.Thread(target=seed.pay, args=(order_sn,), daemon=True)
    payer.start()

    payer.join(timeout=1.5)
    assert payer.is_alive()  # the order never came: still waiting
    seed.order_created(order_sn)
    payer.join(timeout=5)
    assert not payer.is_alive()
