"""The broker on a Redis primary behind Sentinel: a failover during fulfilment loses nothing."""

from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from support.sentinel import SentinelledRedis
from support.services import wait_until

pytestmark = pytest.mark.services


@pytest.fixture
def sentinelled(tmp_path):
    servers = SentinelledRedis(tmp_path / "broker")
    servers.start()
    try:
        yield servers
    finally:
        servers.stop()


def test_the_broker_primary_failed_over_while_200_paid_orders_are_fulfilled(make_shop, sentinelled):
    shop = make_shop(BROKER_SENTINELS=sentinelled.sentinels, BROKER_SENTINEL_SERVICE=sentinelled.service)
    orders = shop.arrange(200)
    shop.worker(threads=4).start()
    with ThreadPoolExecutor(1) as background:
        sender = background.submit(shop.notify_all, [o.order_sn for o in orders], 4, 40)
        wait_until(lambda: shop.fulfilled() >= 20, 60, "fulfilment never got going")

        sentinelled.kill_primary()
        at_failover = shop.fulfilled()

        assert sender.result(timeout=120) == ["success"] * 200  # notify answers through the failover
    assert 20 <= at_failover < 200, "the failover did not land in the middle of fulfilment"
    assert sentinelled.primary_port() == sentinelled.replica.port
    shop.wait_fulfilled(200, timeout=180)
    shop.assert_fulfilled_exactly_once()
    assert "Worker process is ready for action" in shop.workers[0].log()  # the same worker, never restarted
    assert shop.workers[0].process.poll() is None
    namespace = shop.settings["REDIS_NAMESPACE"]
    beats = f"{namespace}:__heartbeats__"  # Dramatiq's, written where its broker lives
    assert redis.Redis(port=sentinelled.replica.port).exists(beats)
    assert not redis.Redis.from_url(shop.settings["REDIS_URL"]).exists(beats)  # not on the gate's Redis
    ready = shop.app.test_client().get("/readyz")
    assert ready.status_code == 200, ready.get_json()  # the probe asks the Sentinel for the new primary
    assert ready.get_json()["checks"]["broker"]["ok"] is True
