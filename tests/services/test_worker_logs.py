"""A `dramatiq` worker process with LOG_FORMAT=json writes JSON lines carrying the message's
id and the order it is about."""

import json

import pytest
from support.services import wait_until

pytestmark = pytest.mark.services


def test_a_worker_process_logs_json_lines_with_the_message_and_the_order(make_shop):
    shop = make_shop(LOG_FORMAT="json")
    worker = shop.worker(threads=1)
    worker.start()
    message = shop.services.bus.actors["mark_order_paid"].send("NO-SUCH-ORDER")  # dead-lettered at once

    def dead_line():
        for line in worker.log().splitlines():
            if line.startswith("{") and "DEAD-LETTERED" in line:
                return json.loads(line)
        return None

    wait_until(dead_line, 60, "no JSON DEAD-LETTERED line in the worker's log")
    line = dead_line()
    assert (line["level"], line["logger"]) == ("ERROR", "gmall_payment.adapters.dramatiq.broker")
    assert (line["order_sn"], line["message_id"]) == ("NO-SUCH-ORDER", message.message_id)
    ready = [
        json.loads(x) for x in worker.log().splitlines() if x.startswith("{") and "ready for action" in x
    ]
    assert ready, "the worker process's own lines are not JSON"
