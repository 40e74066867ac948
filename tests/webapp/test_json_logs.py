"""LOG_FORMAT=json: one JSON object per line, each carrying the request's id, the message's
id in a worker thread, and the order it is about."""

import io
import json
import logging

import pytest
from support.shop import make_app, member_orders, notify_params


@pytest.fixture
def json_app(tmp_path):
    """A shop logging JSON lines, and a function returning those lines parsed (the handler
    ``logs.configure`` put on the root logger, writing to a buffer; removed afterwards)."""

    def make(**settings):
        app = make_app(tmp_path, LOG_FORMAT="json", **settings)
        handler = next(h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler)
        buffer = io.StringIO()
        handler.setStream(buffer)
        made.append((app, handler))
        return app, lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]

    made = []
    level = logging.getLogger().level
    yield make
    for app, handler in made:
        app.extensions["gmall"].bus.close()
        logging.getLogger().removeHandler(handler)
    logging.getLogger().setLevel(level)


def pay(app, **headers):
    services = app.extensions["gmall"]
    with app.app_context():
        payment = services.payments.start(member_orders(app)[0], "mockpay")
    key = services.providers.get("mockpay").config.private_key
    answer = app.test_client().post("/notify/mockpay", data=notify_params(payment, key), headers=headers)
    services.bus.join()
    return answer, payment


def test_a_notification_is_logged_as_json_with_the_request_id_answered(json_app):
    app, lines = json_app()
    answer, payment = pay(app, **{"X-Request-ID": "from-the-client"})  # no trusted proxy: not believed
    [line] = [line for line in lines() if line["logger"] == "gmall_payment.core.payments"]
    assert line["message"] == f"mockpay notification for {payment.out_trade_no}: paid"
    assert line["level"] == "INFO" and line["time"]
    assert line["request_id"] == answer.headers["X-Request-ID"] != "from-the-client"
    assert len(line["request_id"]) == 32


def test_a_trusted_proxy_names_the_request(json_app):
    app, lines = json_app(TRUSTED_PROXIES=1)
    answer, _ = pay(app, **{"X-Request-ID": "lb-7f3a.42"})
    assert answer.headers["X-Request-ID"] == "lb-7f3a.42"
    assert [line["request_id"] for line in lines() if line["logger"] == "gmall_payment.core.payments"] == [
        "lb-7f3a.42"
    ]
    malformed, _ = pay(app, **{"X-Request-ID": "x" * 500})
    assert malformed.headers["X-Request-ID"] != "x" * 500


def test_a_step_in_a_worker_thread_logs_its_order_and_message(json_app):
    app, lines = json_app()
    services = app.extensions["gmall"]
    message = services.bus.actors["mark_order_paid"].send("NO-SUCH-ORDER")  # dead-lettered at once
    services.bus.start()
    services.bus.join()
    [dead] = [line for line in lines() if line["message"].startswith("DEAD-LETTERED")]
    assert (dead["order_sn"], dead["step"], dead["message_id"]) == (
        "NO-SUCH-ORDER",
        "mark_order_paid",
        message.message_id,
    )


def test_an_unknown_log_format_stops_the_start_with_its_name(tmp_path):
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        make_app(tmp_path, LOG_FORMAT="yaml")


def test_a_notification_s_lines_name_its_order_and_payment_and_nothing_after_them_does(json_app):
    app, lines = json_app()
    services = app.extensions["gmall"]
    with app.app_context():
        payment = services.payments.start(member_orders(app)[0], "mockpay")
    key = services.providers.get("mockpay").config.private_key
    client = app.test_client()
    client.post("/notify/mockpay", data=notify_params(payment, key, total_amount="0.01"))  # refused
    client.post("/notify/mockpay", data=notify_params(payment, key))
    logging.getLogger("gmall_payment.tests").warning("a line of other work")
    refused, paid = [line for line in lines() if line["logger"] == "gmall_payment.core.payments"]
    for line in refused, paid:
        assert (line["order_sn"], line["payment_id"]) == (payment.order_sn, payment.id)
    assert "amount_mismatch" in refused["message"] and paid["message"].endswith(": paid")
    [other] = [line for line in lines() if line["message"] == "a line of other work"]
    assert "order_sn" not in other and "payment_id" not in other
