"""The seed's flash sale, ported faithfully: the baseline the seckill benchmark measures
against. Never serve it: its faults are kept on purpose.

Java (``seed/``): ``GET /miaosha/{skuId}`` reads ``sec:stock:<sku>``, then a Redisson
semaphore's ``trySetPermits(stock)`` and ``tryAcquire()``, a countdown latch's
``trySetCount(1)``, and a RabbitMQ message: four Redis round trips and a publish per click.
``GET /miaosha/pay`` calls ``latch.await()`` with no timeout. The Lua below is what
Redisson 3 runs for those calls. Kept faults: no per-member limit, a vanished semaphore is
set again to the full stock, no unit is ever given back, and the pay step may wait forever.

The message's listener (``consume``; run as ``python seed_seckill.py`` by the benchmark)
does what the seed's other RabbitMQ listeners do, one message at a time: it makes that
message's order (the order, its item, its stock lock, in one transaction, with the shop's
own ``insert_orders``), then counts the latch down.
"""

import json
import os
import threading
from datetime import datetime
from decimal import Decimal

import redis
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from gmall_payment.adapters.sql.orders import insert_orders
from gmall_payment.core.model import Order, OrderItem, OrderStatus
from gmall_payment.core.money import points_for
from gmall_payment.core.ordersn import new_order_sn  # IdWorker.getTimeId()

#: RSemaphore.trySetPermits: sets the permits only if the key is missing.
TRY_SET_PERMITS = """
local value = redis.call('get', KEYS[1])
if (value == false or value == 0) then
  redis.call('set', KEYS[1], ARGV[1]); redis.call('publish', KEYS[2], ARGV[1]); return 1
end
return 0
"""
#: RSemaphore.tryAcquire(1)
TRY_ACQUIRE = """
local value = redis.call('get', KEYS[1])
if (value ~= false and tonumber(value) >= tonumber(ARGV[1])) then redis.call('decrby', KEYS[1], ARGV[1]); return 1 end
return 0
"""
#: RCountDownLatch.trySetCount
TRY_SET_COUNT = """
if redis.call('exists', KEYS[1]) == 0 then
  redis.call('set', KEYS[1], ARGV[2]); redis.call('publish', KEYS[2], ARGV[1]); return 1
end
return 0
"""
#: RCountDownLatch.countDown
COUNT_DOWN = """
local v = redis.call('decr', KEYS[1])
if v <= 0 then redis.call('del', KEYS[1]) end
if v == 0 then redis.call('publish', KEYS[2], ARGV[1]) end
"""
QUEUE = "ORDER-EXCHANGE:sec.kill"  # stands in for RabbitMQ's exchange and routing key


class SeedSeckill:
    """``client``: a redis-py client answering ``str``; ``prefix`` namespaces the keys. Orders
    are messages on the ``prefix + QUEUE`` list; whoever makes them calls ``order_created``."""

    def __init__(self, client, prefix: str = ""):
        self.client = client
        self.prefix = prefix
        self._try_set_permits, self._try_acquire, self._try_set_count, self._count_down = (
            client.register_script(script)
            for script in (TRY_SET_PERMITS, TRY_ACQUIRE, TRY_SET_COUNT, COUNT_DOWN)
        )

    def stock(self, sku_id: int, units: int) -> None:
        """What the seed's preheat job wrote: the stock only; the semaphore is made per click."""
        self.client.set(f"{self.prefix}sec:stock:{sku_id}", units)

    def kill(self, user_id: int | None, sku_id: int) -> tuple[bool, str]:
        if user_id is None:
            return False, "请登录后再试!"
        stock = self.client.get(f"{self.prefix}sec:stock:{sku_id}")
        if not stock:
            return False, "秒杀结束!"
        semaphore = f"{self.prefix}sec:semaphore:{sku_id}"
        self._try_set_permits(keys=[semaphore, f"redisson_sc__channel:{{{semaphore}}}"], args=[int(stock)])
        if not self._try_acquire(keys=[semaphore], args=[1]):
            return False, "秒杀失败,欢迎再次秒杀!"
        order_sn = new_order_sn()
        latch = f"{self.prefix}sec:countdown:{order_sn}"
        self._try_set_count(keys=[latch, f"redisson_countdownlatch__channel__{{{latch}}}"], args=[1, 1])
        # SkuLockVO(orderToken, skuId, count); the member is added so orders can be counted per member.
        self.client.lpush(
            self.prefix + QUEUE,
            json.dumps({"orderToken": order_sn, "skuId": sku_id, "count": 1, "userId": user_id}),
        )
        return True, f"秒杀成功,订单号:{order_sn}"

    def consume(self, make_order, timeout: float = 1.0) -> bool:
        """The listener: take one message, make its order, count its latch down; False if
        none came within ``timeout``."""
        message = self.client.brpop([self.prefix + QUEUE], timeout)
        if message is None:
            return False
        lock = json.loads(message[1])
        make_order(lock)
        self.order_created(lock["orderToken"])
        return True

    def order_created(self, order_sn: str) -> None:
        latch = f"{self.prefix}sec:countdown:{order_sn}"
        self._count_down(keys=[latch, f"redisson_countdownlatch__channel__{{{latch}}}"], args=[0])

    def pay(self, order_sn: str) -> None:
        """``latch.await()``: returns once the order is created, and never otherwise."""
        latch = f"{self.prefix}sec:countdown:{order_sn}"
        with self.client.pubsub() as pubsub:
            pubsub.subscribe(f"redisson_countdownlatch__channel__{{{latch}}}")
            while int(self.client.get(latch) or 0) > 0:
                pubsub.get_message(timeout=1.0)


def listen(threads: int) -> None:
    """The seed's order service: ``threads`` listeners on the settings the benchmark passes
    (BENCH_DATABASE_URL, BENCH_REDIS_URL, BENCH_PREFIX, BENCH_PRICE), until killed."""
    engine = create_engine(os.environ["BENCH_DATABASE_URL"], pool_size=threads)
    seed = SeedSeckill(
        redis.Redis.from_url(os.environ["BENCH_REDIS_URL"], decode_responses=True), os.environ["BENCH_PREFIX"]
    )
    price = Decimal(os.environ["BENCH_PRICE"])

    def make_order(lock):
        points = points_for(price)
        order = Order(
            lock["orderToken"],
            lock["userId"],
            OrderStatus.AWAITING_PAYMENT,
            price,
            points,
            points,
            [OrderItem(lock["skuId"], "秒杀", lock["count"], price)],
        )
        with Session(engine) as session, session.begin():
            insert_orders(session, [(order, [(lock["skuId"], lock["count"])])], datetime.now())

    def listener():
        while True:
            seed.consume(make_order)

    for _ in range(threads):
        threading.Thread(target=listener, daemon=True).start()
    threading.Event().wait()


if __name__ == "__main__":
    listen(int(os.environ.get("BENCH_LISTENERS", "4")))
