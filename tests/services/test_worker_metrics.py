"""A `dramatiq` worker serves its metrics on Dramatiq's exposition port: Dramatiq's own and the
shop's counters of the worker process (its steps); the web side's /metrics reads the broker's
dead letters on Redis."""

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from support.services import free_port, wait_until

pytestmark = pytest.mark.services


def samples(text: str) -> dict:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_the_worker_serves_its_step_metrics_and_the_web_side_the_dead_letters(make_shop, tmp_path):
    shop = make_shop()
    [order] = shop.arrange(1)
    port = free_port()
    (tmp_path / "worker-metrics").mkdir()
    worker = shop.worker(threads=2)
    worker.env.update(dramatiq_prom_port=str(port), dramatiq_prom_db=str(tmp_path / "worker-metrics"))
    worker.start()
    assert shop.notify(order.order_sn) == "success"
    shop.wait_fulfilled(1)

    def step_counted():
        try:
            scraped = samples(requests.get(f"http://127.0.0.1:{port}/", timeout=5).text)
        except requests.RequestException:
            return False
        return scraped.get(
            ("gmall_step_seconds_count", (("outcome", "done"), ("step", "award_points")))
        ) == 1 and any(name == "dramatiq_messages_total" for name, _ in scraped)

    wait_until(step_counted, 30, "the worker's exposition never counted the step")
    web = shop.app.test_client().get("/metrics")
    assert web.status_code == 200
    scraped = samples(web.text)
    assert scraped[("gmall_dead_letters", (("queue", "fulfilment"),))] == 0
    assert scraped[("gmall_metrics_source_up", (("source", "dead_letters"),))] == 1
