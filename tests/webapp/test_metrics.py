"""GET /metrics: the counters move with what the shop does, the state is read when scraped,
the endpoint is the scraper's only, and several processes add up."""

import os
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update
from support.forms import logged_in
from support.production import make_production_app
from support.seckill_web import JSON, SKU, preheated
from support.shop import make_app, notify_params

from gmall_payment.adapters.metrics import exposition
from gmall_payment.adapters.sql.models import Member, Order, OutboxEvent, db
from gmall_payment.adapters.sql.store import SqlUnitOfWork
from gmall_payment.core.errors import ProviderError
from gmall_payment.core.events import Event
from gmall_payment.core.model import PaymentStatus

TOKEN = "metrics-token-for-tests-only"


@pytest.fixture
def shop(tmp_path):
    app = make_app(tmp_path, SECKILL_TICK_SECONDS=0.05, SECKILL_RATE_LIMIT_IP="1000/minute")
    yield app
    app.extensions["gmall"].bus.close()


def samples(text: str) -> dict:
    """{(sample name, ((label, value), ...)): value} of a scrape."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(app, **kwargs) -> dict:
    answer = app.test_client().get("/metrics", **kwargs)
    assert answer.status_code == 200, answer.text
    assert answer.content_type.startswith("text/plain")
    return samples(answer.text)


def value(scraped: dict, name: str, **labels) -> float:
    return scraped.get((name, tuple(sorted(labels.items()))), 0.0)


def pay_first_order(app):
    services = app.extensions["gmall"]
    with app.app_context():
        member = db.session.scalar(select(Member).where(Member.username == "demo"))
        order = db.session.scalar(select(Order).where(Order.member_id == member.id, Order.status == 0))
        order_sn = order.order_sn
        payment = services.payments.start(order_sn, "mockpay")
    key = services.providers.get("mockpay").config.private_key
    assert app.test_client().post("/notify/mockpay", data=notify_params(payment, key)).text == "success"
    services.bus.join()
    return payment


def test_a_paid_order_moves_notifications_transitions_steps_and_provider_calls(shop):
    before = scrape(shop)
    payment = pay_first_order(shop)
    with pytest.raises(ProviderError) as raised:  # mockpay has no such trade: checkout never opened it
        shop.extensions["gmall"].providers.get("mockpay").query(payment)
    after = scrape(shop)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("gmall_notifications_total", provider="mockpay", verdict="paid", accepted="true") == 1
    assert moved("gmall_payment_transitions_total", from_status="unpaid", to_status="paid") == 1
    for step in ("mark_order_paid", "deduct_stock", "award_points"):
        assert moved("gmall_step_seconds_count", step=step, outcome="done") == 1, step
    assert moved("gmall_provider_call_seconds_count", provider="mockpay", call="query", outcome="error") == 1
    assert (
        moved(
            "gmall_provider_errors_total", provider="mockpay", call="query", error=type(raised.value).__name__
        )
        == 1
    )


def test_a_rolled_back_move_is_not_counted(shop):
    before = scrape(shop)
    with shop.app_context():
        order = db.session.scalar(select(Order).where(Order.status == 0))
        payment = shop.extensions["gmall"].payments.start(order.order_sn, "mockpay")
        uow = SqlUnitOfWork()
        assert uow.payments.move(payment.id, PaymentStatus.UNPAID, PaymentStatus.CLOSED)
        uow.rollback()
    moved = value(
        scrape(shop), "gmall_payment_transitions_total", from_status="unpaid", to_status="closed"
    ) - value(before, "gmall_payment_transitions_total", from_status="unpaid", to_status="closed")
    assert moved == 0


def test_a_click_counts_its_outcome_and_the_units_left_go_down(shop):
    demo = logged_in(shop)
    sale = preheated(demo)
    before = scrape(shop)
    [units] = [
        v
        for (name, labels), v in before.items()
        if name == "gmall_seckill_units_left" and dict(labels)["sku"] == str(SKU)
    ]
    assert units == sale["units_left"]
    assert demo.get(f"/seckill/{SKU}", headers=JSON).status_code == 200
    after = scrape(shop)
    assert (
        value(after, "gmall_seckill_clicks_total", outcome="reserved")
        - value(before, "gmall_seckill_clicks_total", outcome="reserved")
    ) == 1
    assert (
        value(
            after,
            "gmall_seckill_units_left",
            sale=dict(next(labels for (name, labels) in before if name == "gmall_seckill_units_left"))[
                "sale"
            ],
            sku=str(SKU),
        )
        == units - 1
    )


def test_the_outbox_gauges_move_when_an_unsent_event_is_written(shop):
    before = scrape(shop)
    with shop.app_context():
        with SqlUnitOfWork() as uow:
            event_id = uow.outbox.add(Event("test.unsent", "no-such-order", {}))
            uow.commit()
        db.session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id == event_id)
            .values(create_time=datetime.now() - timedelta(minutes=5))
        )
        db.session.commit()
    after = scrape(shop)
    assert value(after, "gmall_outbox_unsent") == value(before, "gmall_outbox_unsent") + 1
    assert 300 <= value(after, "gmall_outbox_oldest_unsent_seconds") < 400
    assert value(after, "gmall_metrics_source_up", source="outbox") == 1


def test_metrics_are_for_loopback_without_a_token(shop):
    assert shop.test_client().get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 403
    assert shop.test_client().get("/metrics", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200


@pytest.mark.settings(METRICS_TOKEN=TOKEN)
def test_metrics_ask_for_the_token_when_one_is_set(client):
    refused = client.get("/metrics")
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    remote = {"REMOTE_ADDR": "10.1.2.3"}
    assert (
        client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, environ_base=remote).status_code
        == 200
    )


@pytest.mark.settings(METRICS=False)
def test_metrics_off_is_a_404_and_nothing_counts(app, client):
    assert client.get("/metrics").status_code == 404
    before = samples(exposition(None).decode())
    pay_first_order(app)
    after = samples(exposition(None).decode())
    labels = {"provider": "mockpay", "verdict": "paid", "accepted": "true"}
    assert value(after, "gmall_notifications_total", **labels) == value(
        before, "gmall_notifications_total", **labels
    )


INCREMENT = textwrap.dedent("""
    from gmall_payment.adapters.metrics import METRICS
    METRICS.click("reserved")
    METRICS.click("reserved")
""")


def test_several_processes_add_up(tmp_path, monkeypatch):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", INCREMENT], env=env, check=True, timeout=60)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    assert value(samples(exposition(None).decode()), "gmall_seckill_clicks_total", outcome="reserved") == 4


@pytest.mark.usefixtures("builtin_providers_only")  # also where another provider is installed, unconfigured
def test_in_production_metrics_need_the_token_and_a_source_that_fails_is_left_out(tmp_path):
    (tmp_path / "closed").mkdir()
    (tmp_path / "open").mkdir()
    closed = make_production_app(tmp_path / "closed")
    assert closed.test_client().get("/metrics").status_code == 403  # loopback too: a local proxy would be

    app = make_production_app(tmp_path / "open", METRICS_TOKEN=TOKEN)
    scraped = scrape(app, headers={"Authorization": f"Bearer {TOKEN}"})  # Redis (port 1) does not answer
    assert value(scraped, "gmall_metrics_source_up", source="dead_letters") == 0
    assert value(scraped, "gmall_metrics_source_up", source="outbox") == 1
    assert not [name for name, _ in scraped if name == "gmall_dead_letters"]


def test_a_notification_too_large_to_read_is_counted(shop):
    before = scrape(shop)
    answer = shop.test_client().post(
        "/notify/mockpay", data=b"a=" + b"x" * 70_000, content_type="application/x-www-form-urlencoded"
    )
    assert answer.status_code == 413
    labels = {"provider": "mockpay", "verdict": "too_large", "accepted": "false"}
    assert (
        value(scrape(shop), "gmall_notifications_total", **labels)
        == value(before, "gmall_notifications_total", **labels) + 1
    )


def test_the_worker_module_names_the_directory_before_prometheus_client_is_imported():
    """prometheus-client picks its multiprocess mode once, at import: the package the worker's
    module lives in must not import it first (``webapp/__init__.py`` imports the app lazily)."""
    check = "import sys, gmall_payment.webapp; print('prometheus_client' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "False"
