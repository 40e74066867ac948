"""The flash sale on the real services: MariaDB, Redis, the shop over real HTTP, and
`dramatiq` worker processes as the order creator.

Members are logged in by signing their session cookie with the shop's key, as the login
form would after checking a password (500 password checks would dominate the test).
"""

import signal
import time
from collections import Counter

import pytest
import requests
from sqlalchemy import func, select
from support.races import race
from support.seckill_services import SECKILL, SKU, arrange, cookie, links, orders_of_sku, stock, units_left
from support.services import wait_until

from gmall_payment.adapters.dramatiq.seckill import EXPIRE
from gmall_payment.adapters.sql.models import FulfilmentTrace, db
from gmall_payment.adapters.sql.seckill import SeckillOrderRow
from gmall_payment.core.events import GIVE_BACK_SECKILL_UNIT
from gmall_payment.core.seckill import SeckillOrderStatus

pytestmark = pytest.mark.services


def click(session, shop, member_id):
    response = session.get(
        f"{shop.url}/seckill/{SKU}",
        cookies={"session": cookie(shop, member_id)},
        headers={"Accept": "application/json"},
        timeout=30,
    )
    return member_id, response.status_code, response.json()


def assert_database_and_redis_agree(shop, sale, orders):
    """``orders`` orders, one per member, each the one Redis records for its member."""
    created = links(shop)
    assert len(created) == orders and len({member for member, _ in created}) == orders
    assert sorted(orders_of_sku(shop)) == sorted((member, 0) for member, _ in created)
    assert units_left(shop) == sale.units - orders
    buyers = shop.services.seckill.gate.client.hgetall(shop.services.seckill.gate.keys(SKU)[1])
    assert buyers == {str(member): order_sn for member, order_sn in created}
    assert stock(shop) == (10_000, orders, 0)


def test_a_burst_of_2000_clicks_from_500_members_sells_100_units_once_each(make_shop):
    shop = make_shop(**SECKILL)
    sale = arrange(shop, members=500, units=100)
    shop.worker(threads=4).start()
    wait_until(lambda: units_left(shop) == 100, 30, "the worker's tick did not preheat the sale")

    members = [1 + n % 500 for n in range(2000)]  # each member four times, spread out
    http = requests.Session()
    http.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=64))

    def clicks(n):  # 64 shoppers at once, each clicking for every 64th of the members
        return [click(http, shop, member_id) for member_id in members[n::64]]

    answers = [answer for each in race(64, clicks, timeout=240) for answer in each]

    outcomes = Counter(answer["outcome"] for _, _, answer in answers)
    assert outcomes["reserved"] == 100 and set(outcomes) <= {"reserved", "already_bought", "sold_out"}
    assert {status for _, status, _ in answers} <= {200, 409, 410}
    reserved = {
        answer["order_sn"]: member for member, _, answer in answers if answer["outcome"] == "reserved"
    }
    assert len(reserved) == 100 and len(set(reserved.values())) == 100
    wait_until(lambda: len(links(shop)) == 100, 60, "the orders were not all created")
    assert {order_sn: member for member, order_sn in links(shop)} == reserved
    assert units_left(shop) == 0
    assert_database_and_redis_agree(shop, sale, 100)


def test_expiry_gives_units_back_once_and_the_member_buys_again(make_shop):
    shop = make_shop(SECKILL_PAY_WITHIN_SECONDS=2, SECKILL_PAY_WAIT_SECONDS=1, **SECKILL)
    sale = arrange(shop, members=3, units=5)
    with shop.app.app_context():
        shop.services.seckill.preheat(sale)  # the operator's preheat; the worker's tick then finds it loaded
    http = requests.Session()
    answers = [click(http, shop, member) for member in (1, 2, 3)]
    sns = [answer["order_sn"] for _, _, answer in answers]

    started = time.monotonic()  # no worker yet: the pay step gives up within its bound
    waiting = http.get(
        f"{shop.url}/seckill/pay?orderSn={sns[0]}",
        cookies={"session": cookie(shop, 1)},
        allow_redirects=False,
        timeout=30,
    )
    assert waiting.status_code == 202 and time.monotonic() - started < 3

    worker = shop.worker()
    worker.start()
    wait_until(
        lambda: len(links(shop, SeckillOrderStatus.CLOSED)) == 3,
        60,
        "the unpaid orders were not closed and given back",
    )
    wait_until(lambda: units_left(shop) == 5, 30, "the units did not come back")
    assert [status for _, status in orders_of_sku(shop)] == [4, 4, 4] and stock(shop) == (10_000, 0, 0)

    shop.services.broker.actors[EXPIRE].send(sns)  # the same expiry again
    with shop.app.app_context():
        assert (
            shop.services.order_closing.close(sns[0], "a second close") is False
        )  # and someone closing it again
    time.sleep(2)
    assert units_left(shop) == 5
    with shop.app.app_context():
        returned = db.session.scalar(
            select(func.count())
            .select_from(SeckillOrderRow)
            .where(SeckillOrderRow.order_sn.in_(sns), SeckillOrderRow.returned_time.is_not(None))
        )
        done = db.session.scalar(
            select(func.count())
            .select_from(FulfilmentTrace)
            .where(FulfilmentTrace.step == GIVE_BACK_SECKILL_UNIT, FulfilmentTrace.outcome == "done")
        )
    # Each unit came back once: by its give-back step, or by the tick's sweep when it got there
    # between the step's two transactions (the step then traces it skipped).
    assert returned == 3 and done <= 3

    member, status, again = click(http, shop, 1)
    assert (status, again["outcome"]) == (200, "reserved") and again["order_sn"] not in sns
    wait_until(lambda: len(links(shop)) == 1, 30, "the second order was not created")
    assert units_left(shop) == 4


def test_a_crashed_order_creator_restarted_creates_every_pending_order_once(make_shop):
    shop = make_shop(SECKILL_BATCH=10, SECKILL_CLAIM_AFTER_SECONDS=2, **SECKILL)
    sale = arrange(shop, members=1000, units=1000)
    with shop.app.app_context():
        shop.services.seckill.preheat(sale)
        assert all(shop.services.seckill.click(m, SKU, "192.0.2.10").order_sn for m in range(1, 1001))
    worker = shop.worker(threads=4)
    worker.start()

    wait_until(lambda: len(links(shop)) >= 30, 60, "the creator never got going")
    worker.kill(signal.SIGKILL)
    at_kill = len(links(shop))
    assert at_kill < 1000, "the kill came after every order was made"

    shop.worker(threads=4).start()
    wait_until(lambda: len(links(shop)) == 1000, 120, "the restarted creator did not make every order")
    time.sleep(3)  # past claim_after: anything handed to the dead consumer has been claimed again
    assert_database_and_redis_agree(shop, sale, 1000)
    pending = shop.services.seckill.gate.keys(SKU)[2]
    assert shop.services.seckill.gate.client.xlen(pending) == 0


def test_rate_limits_are_counted_in_redis_for_the_click_and_the_wait(make_shop):
    shop = make_shop(
        SECKILL_TICK_SECONDS=0.2,
        SECKILL_REDIS_TIMEOUT_SECONDS=SECKILL["SECKILL_REDIS_TIMEOUT_SECONDS"],
        SECKILL_RATE_LIMIT_MEMBER="2/minute",
        SECKILL_RATE_LIMIT_IP="100000/second",
        SECKILL_RATE_LIMIT_WAIT="2/minute",
    )
    arrange(shop, members=2, units=10)
    shop.worker(threads=2).start()
    wait_until(lambda: units_left(shop) == 10, 30, "the worker's tick did not preheat the sale")
    http = requests.Session()

    clicks = [click(http, shop, 1) for _ in range(3)]
    assert [status for _, status, _ in clicks] == [200, 409, 429]
    order_sn = clicks[0][2]["order_sn"]
    waits = [
        http.get(
            f"{shop.url}/seckill/orders/{order_sn}",
            cookies={"session": cookie(shop, 1)},
            headers={"Accept": "application/json"},
            timeout=30,
        )
        for _ in range(3)
    ]
    assert [w.status_code for w in waits] == [200, 200, 429]
    assert 1 <= int(waits[2].headers["Retry-After"]) <= 60
    assert click(http, shop, 2)[1] == 200  # another member, its own allowance
    redis_client, namespace = shop.services.seckill.gate.client, shop.settings["REDIS_NAMESPACE"]
    counters = list(redis_client.scan_iter(match=f"{namespace}:{{seckill:{SKU}}}:clicks:*"))
    assert len(counters) == 3 and all(
        int(redis_client.get(key)) >= 1 for key in counters
    )  # 2 members, 1 address
    assert units_left(shop) == 8
