"""The click's cache of ended sessions on a Redis Cluster of the test's own: a logout on one shop
is heard by another (the cluster passes what is published on any node to the subscribers of
every node), also once the node the other's subscription was on has died: it subscribes again
on a node that answers, and clicks go on without reading the database."""

import pytest
from support.forms import copied, log_out, logged_in
from support.services import REDIS_URL, wait_until
from support.session_cache import cache, click, counted_reads, shops_on, subscribed

from gmall_payment.adapters import session_cache

pytestmark = pytest.mark.services


@pytest.fixture
def shops(tmp_path, cluster, monkeypatch):
    """``make()``: another shop on one database and the cluster (the broker on the plain Redis,
    as Dramatiq needs); its subscriber tries again after 0.2 s."""
    monkeypatch.setattr(session_cache, "RETRY_SECONDS", 0.2)
    with shops_on(tmp_path, cluster.url, BROKER_REDIS_URL=REDIS_URL) as make:
        yield make


def _subscribed_on(app) -> int:
    """The port of the node ``app``'s subscription is on."""
    return cache(app).subscription.connection.port


def test_a_logout_is_heard_across_the_cluster_also_after_the_subscription_s_node_died(shops, cluster):
    here, there = shops(), shops()
    subscribed(there)
    dead = _subscribed_on(there)
    node = next(node for node in cluster.nodes if node.port == dead)

    node.process.kill()
    node.process.wait(10)
    wait_until(
        lambda: cache(there).healthy and _subscribed_on(there) != dead,
        30,
        f"the session cache never subscribed again after node {dead} died",
    )

    probe = logged_in(there)  # its clicks answer 503 until the dead node's replica took over
    wait_until(lambda: click(probe) == 404, 60, f"no replica took over from node {dead}")

    demo = logged_in(here)
    thief, reads = copied(there, demo), counted_reads(there)
    assert click(thief) == 404 and reads == []  # trusted again: no read of the database
    log_out(demo)  # published through a node of here's, heard on there's
    wait_until(lambda: click(thief) == 401, 10, "the logout was not heard across the cluster")
    assert len(reads) == 1  # the announced member's generation, read once
