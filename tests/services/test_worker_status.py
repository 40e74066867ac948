"""Workers beat into Redis; ``gmall-payment status`` tells the live ones from the killed ones,
and counts what waits in each queue and what was dead-lettered."""

import json
import signal
import subprocess

import pytest
from support.services import BIN, wait_until

# Each status is a `gmall-payment status` process, which starts the app: slow on a loaded machine.
pytestmark = [pytest.mark.services, pytest.mark.timeout(300)]

BEAT = 0.5


def status(shop) -> tuple[int, dict]:
    done = subprocess.run(
        [str(BIN / "gmall-payment"), "status", "--json"],
        env=shop.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {}


def test_a_killed_worker_drops_out_of_the_status_within_three_beats(make_shop):
    shop = make_shop(WORKER_HEARTBEAT_SECONDS=BEAT)
    code, report = status(shop)
    assert (code, report["workers"]) == (1, {})  # none started yet: exit 1 says so
    assert set(report["queues"]) >= {"fulfilment"}
    worker = shop.worker(threads=1)
    worker.start()
    wait_until(lambda: len(status(shop)[1]["workers"]) == 1, 30, "the worker never beat")
    assert status(shop)[0] == 0
    worker.kill(signal.SIGKILL)
    wait_until(lambda: status(shop)[1]["workers"] == {}, 3 * BEAT + 15, "a killed worker still looks alive")


def test_the_queues_count_what_waits_and_what_was_dead_lettered(make_shop):
    shop = make_shop()
    fulfilment = shop.services.broker.get_declared_queues()
    assert "fulfilment" in fulfilment
    actor = next(a for a in shop.services.broker.actors.values() if a.queue_name == "fulfilment")
    for n in range(3):
        actor.send(f"NOPE{n}")  # nobody consumes: no worker runs
    actor.send_with_options(args=("LATER",), delay=3_600_000)
    client, namespace = shop.services.heartbeat.client, shop.settings["REDIS_NAMESPACE"]
    message_id = client.lpop(f"{namespace}:fulfilment")  # dead-letter one by hand, as the broker does
    client.zadd(f"{namespace}:fulfilment.XQ", {message_id: 1})
    code, report = status(shop)
    assert report["queues"]["fulfilment"] == {"waiting": 2, "delayed": 1, "dead": 1}
