"""After payment, nothing lost and nothing doubled: MariaDB, Redis, real `dramatiq` workers."""

import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from sqlalchemy import func, select, text
from support.mariadb import PrivateMariaDB
from support.services import BIN, REDIS_URL, Shop, wait_until

from gmall_payment.adapters.dramatiq.broker import BrokerSettings
from gmall_payment.adapters.sql.models import FulfilmentTrace, OutboxEvent, db
from gmall_payment.core import events

pytestmark = pytest.mark.services


def test_200_orders_paid_through_mockpay_are_fulfilled_exactly_once(make_shop):
    shop = make_shop()
    orders = shop.arrange(200)
    shop.worker(threads=8).start()

    answers = shop.notify_all([o.order_sn for o in orders])

    assert answers == ["success"] * 200
    shop.wait_fulfilled(200)
    shop.assert_fulfilled_exactly_once()


def test_a_worker_killed_mid_pipeline_and_restarted_converges(make_shop):
    shop = make_shop()
    orders = shop.arrange(150)
    worker = shop.worker(threads=2)
    worker.start()
    sender = _in_background(lambda: shop.notify_all([o.order_sn for o in orders], threads=4, rate=50))

    wait_until(lambda: shop.fulfilled() >= 10, 60, "the worker never got going")
    _kill_holding(shop, worker)  # main process and worker process: no cleanup, no requeue on exit
    at_kill, held = shop.fulfilled(), _unacked(shop)

    assert worker.exit_codes == [-signal.SIGKILL]
    assert 10 <= at_kill < 150, "the kill did not land in the middle of the pipeline"
    assert held > 0, "the dead worker held no message: nothing to recover"
    assert sender.result(timeout=120) == ["success"] * 150  # notify does not need a worker
    shop.worker(threads=4).start()
    shop.wait_fulfilled(150, timeout=180)
    shop.assert_fulfilled_exactly_once()


def test_a_killed_worker_s_unacknowledged_messages_are_back_within_the_heartbeat_timeout(make_shop):
    """Dramatiq's own requeue, not the outbox's redelivery (put out of reach): with maintenance on
    every call (the default), the first fetch after the dead worker's heartbeat timeout gives
    its messages back."""
    heartbeat = 3
    shop = make_shop(
        REDIS_HEARTBEAT_TIMEOUT_SECONDS=heartbeat,
        REDIS_MAINTENANCE_CHANCE=BrokerSettings.maintenance_chance,  # the default, not FAST's
        OUTBOX_REDELIVER_SECONDS=3600,
    )
    orders = shop.arrange(60)
    worker = shop.worker(threads=1)
    worker.start()
    sender = _in_background(lambda: shop.notify_all([o.order_sn for o in orders], threads=4, rate=30))
    wait_until(lambda: shop.fulfilled() >= 5, 60, "the worker never got going")
    _kill_holding(shop, worker)
    dead = _ack_sets(shop)  # all the killed worker's: it was the only one
    assert _held_in(shop, dead) > 0, "the dead worker held no message: nothing to recover"
    assert sender.result(timeout=120) == ["success"] * 60

    shop.worker(threads=4).start()
    started = time.monotonic()
    wait_until(lambda: _held_in(shop, dead) == 0, heartbeat + 30, "the dead worker's messages stayed")
    back = time.monotonic() - started
    shop.wait_fulfilled(60, timeout=120)
    shop.assert_fulfilled_exactly_once()
    assert back < heartbeat + 30  # a bound on a slow machine: the heartbeat timeout and a few fetches


def test_redis_stopped_while_notifications_arrive_then_everything_is_delivered(make_shop, private_redis):
    shop = make_shop(redis_url=private_redis.url)
    orders = shop.arrange(40)
    before, during = orders[:20], orders[20:]
    shop.worker().start()
    assert shop.notify_all([o.order_sn for o in before]) == ["success"] * 20
    shop.wait_fulfilled(20)

    private_redis.stop()
    answers = shop.notify_all([o.order_sn for o in during])

    assert answers == ["success"] * 20  # the payment is recorded; its event waits in the outbox
    waiting = shop.count(select(func.count()).select_from(OutboxEvent).where(OutboxEvent.sent_time.is_(None)))
    assert waiting == 20
    assert shop.fulfilled() == 20

    private_redis.start()  # empty: it keeps nothing on disk
    shop.wait_fulfilled(40, timeout=120)
    shop.assert_fulfilled_exactly_once()


def test_a_database_down_for_20_s_answers_notifications_non_success_then_everything_converges(
    tmp_path, redis_namespace
):
    """MariaDB of the test's own stopped for 20 s: providers are told to try again (never
    "success" for what was not recorded), and once it is back their retries are recorded and
    fulfilled once, with no process restarted by hand."""
    server = PrivateMariaDB(tmp_path)
    server.start()
    shop = Shop(tmp_path, server.url, REDIS_URL, redis_namespace)
    try:
        orders = shop.arrange(30)
        before, during = [o.order_sn for o in orders[:10]], [o.order_sn for o in orders[10:]]
        worker = shop.worker()
        worker.start()
        assert shop.notify_all(before) == ["success"] * 10
        shop.wait_fulfilled(10)

        server.stop()
        stopped = time.monotonic()
        answers = shop.notify_all(during, threads=4)
        time.sleep(max(0.0, 20 - (time.monotonic() - stopped)))
        server.start()  # the same data and port

        assert "success" not in answers, answers
        assert shop.notify_all(during, threads=4) == ["success"] * 20  # the providers' retries
        shop.wait_fulfilled(30, timeout=180)
        shop.assert_fulfilled_exactly_once()
        assert worker.process.poll() is None  # the worker lived through it
    finally:
        shop.close()
        server.stop()


def test_the_same_messages_twice_and_out_of_order_take_effect_once(make_shop):
    shop = make_shop()
    orders = shop.arrange(10)
    shop.worker().start()
    bus = shop.services.bus

    for order in orders:  # points and stock before the order is paid
        bus.publish(events.order_paid(order.order_sn))
    _wait_for_trace(shop, [o.order_sn for o in orders], "award_points", "failed")
    assert shop.fulfilled() == 0 and shop.awarded() == 0

    assert shop.notify_all([o.order_sn for o in orders]) == ["success"] * 10
    for order in orders:  # and every message once more
        bus.publish(events.payment_succeeded(order.order_sn, "mockpay", "T", "1.00"))
        bus.publish(events.order_paid(order.order_sn))
    shop.wait_fulfilled(10)
    _wait_for_trace(shop, [o.order_sn for o in orders], "award_points", "skipped", count=2)

    shop.assert_fulfilled_exactly_once()
    with shop.app.app_context():
        first = db.session.execute(
            select(FulfilmentTrace.order_sn, FulfilmentTrace.outcome)
            .where(FulfilmentTrace.step == "award_points")
            .order_by(FulfilmentTrace.id)
        ).all()
    firsts = {}
    for order_sn, outcome in first:
        firsts.setdefault(order_sn, outcome)
    assert set(firsts.values()) == {"failed"}  # each order's points were tried before it was paid


def test_a_database_error_in_an_actor_is_retried_then_dead_lettered_and_the_order_stuck(make_shop):
    shop = make_shop(STEP_MAX_RETRIES=3, STEP_MIN_BACKOFF_SECONDS=0.3, STEP_MAX_BACKOFF_SECONDS=0.6)
    orders = shop.arrange(2, members=2)
    transient, permanent = sorted(orders, key=lambda o: o.member_id)
    assert (transient.member_id, permanent.member_id) == (1, 2)
    with shop.app.app_context():  # a real database error whenever a listed member's points change
        for statement in (
            "CREATE TABLE test_failing_member (member_id BIGINT PRIMARY KEY)",
            "INSERT INTO test_failing_member VALUES (1), (2)",
            "CREATE TRIGGER test_points_fail BEFORE UPDATE ON ums_member FOR EACH ROW BEGIN "
            "IF NEW.id IN (SELECT member_id FROM test_failing_member) THEN "
            "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'injected: ums_member is unavailable'; END IF; END",
        ):
            db.session.execute(text(statement))
        db.session.commit()
    worker = shop.worker()
    worker.start()

    assert shop.notify_all([o.order_sn for o in orders]) == ["success", "success"]
    _wait_for_trace(shop, [transient.order_sn], "award_points", "failed", count=2)
    _heal(shop, transient.member_id)  # the database recovers before the last retry
    _wait_for_trace(shop, [permanent.order_sn], "award_points", "dead")
    shop.wait_fulfilled(1)

    sn = permanent.order_sn
    log = worker.log()
    assert (
        f"DEAD-LETTERED award_points(order_sn={sn}) after 4 attempts: OperationalError: "
        f"(pymysql.err.OperationalError) (1644, 'injected: ums_member is unavailable')"
    ) in log
    assert f"the order is stuck until replayed with: gmall-payment replay award_points {sn}" in log
    dead_letters = redis.Redis.from_url(shop.settings["REDIS_URL"])
    assert dead_letters.zcard(f"{shop.settings['REDIS_NAMESPACE']}:fulfilment.XQ") == 1
    trace = shop.login(permanent.member_id).get(f"/api/orders/{sn}/trace").json
    assert trace["stuck"] is True
    assert [(s["step"], s["state"]) for s in trace["fulfilment"]] == [
        ("mark_order_paid", "done"),
        ("deduct_stock", "done"),
        ("award_points", "dead"),
    ]
    assert [e["outcome"] for e in trace["trace"] if e["step"] == "award_points"] == ["failed"] * 4 + ["dead"]
    assert f'class="trace stuck" id="trace-{sn}"' in shop.login(permanent.member_id).get("/orders").text
    assert shop.awarded() == 1
    transient_trace = shop.login(transient.member_id).get(f"/api/orders/{transient.order_sn}/trace").json
    points = [e["outcome"] for e in transient_trace["trace"] if e["step"] == "award_points"]
    assert points[:2] == ["failed", "failed"] and points[-1] == "done" and "dead" not in points

    _heal(shop, permanent.member_id)  # then the operator replays, as the log line says
    replay = subprocess.run(
        [str(BIN / "gmall-payment"), "replay", "award_points", sn],
        env=shop.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert replay.returncode == 0, replay.stderr
    assert replay.stdout.strip() == f"award_points({sn}): done"
    shop.wait_fulfilled(2)
    shop.assert_fulfilled_exactly_once()
    assert shop.login(permanent.member_id).get(f"/api/orders/{sn}/trace").json["stuck"] is False


def _kill_holding(shop, worker, timeout=60):
    """SIGKILL the worker's processes at a moment they hold fetched, unacknowledged messages:
    each try freezes them first (SIGSTOP: nothing more is acknowledged between the look and the
    kill) and lets them go on (SIGCONT) if they held none."""
    group, deadline = worker.process.pid, time.monotonic() + timeout
    os.killpg(group, signal.SIGSTOP)
    while _unacked(shop) == 0:
        os.killpg(group, signal.SIGCONT)
        assert time.monotonic() < deadline, "the worker never held a message"
        time.sleep(0.02)
        os.killpg(group, signal.SIGSTOP)
    worker.kill(signal.SIGKILL)


def _ack_sets(shop) -> list[str]:
    """The keys of the worker processes' acknowledgement sets in our namespace (one per worker and queue)."""
    client = redis.Redis.from_url(shop.settings["REDIS_URL"], decode_responses=True)
    try:
        return list(client.scan_iter(f"{shop.settings['REDIS_NAMESPACE']}:__acks__.*"))
    finally:
        client.close()


def _held_in(shop, keys) -> int:
    client = redis.Redis.from_url(shop.settings["REDIS_URL"])
    try:
        return sum(client.scard(key) for key in keys)
    finally:
        client.close()


def _unacked(shop):
    """Messages fetched but not acknowledged, in the worker acknowledgement sets of our namespace."""
    client = redis.Redis.from_url(shop.settings["REDIS_URL"])
    try:
        return sum(
            client.scard(key) for key in client.scan_iter(f"{shop.settings['REDIS_NAMESPACE']}:__acks__.*")
        )
    finally:
        client.close()


def _heal(shop, member_id):
    with shop.app.app_context():
        db.session.execute(text("DELETE FROM test_failing_member WHERE member_id = :m"), {"m": member_id})
        db.session.commit()


def _wait_for_trace(shop, order_sns, step, outcome, count=1, timeout=60):
    def traced():
        with shop.app.app_context():
            rows = db.session.execute(
                select(FulfilmentTrace.order_sn, func.count())
                .where(
                    FulfilmentTrace.order_sn.in_(order_sns),
                    FulfilmentTrace.step == step,
                    FulfilmentTrace.outcome == outcome,
                )
                .group_by(FulfilmentTrace.order_sn)
            ).all()
        return len([n for _, n in rows if n >= count]) == len(order_sns)

    wait_until(traced, timeout, f"{step} {outcome} x{count} not traced for every order")


def _in_background(work):
    pool = ThreadPoolExecutor(1)
    future = pool.submit(work)
    pool.shutdown(wait=False)
    return future
