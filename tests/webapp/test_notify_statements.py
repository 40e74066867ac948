"""The notification that pays an order costs six statements (issue 14: each is a round trip,
and a round trip costs the web more CPU than the verification does): the payment read with its
order's status, its move, the settlement, the outbox event, the notify log, and once the event
is published, its "sent" mark. The checks all stay; fewer would mean one was dropped."""

import threading
from collections import Counter

from sqlalchemy import event
from support.shop import notify_params

from gmall_payment.adapters.sql.models import db


def test_a_paying_notification_runs_six_statements_and_its_copy_three(app, client):
    with app.app_context():
        [order_sn] = [
            row.order_sn for row in db.session.execute(db.text("SELECT order_sn FROM oms_order LIMIT 1"))
        ]
        payment = app.extensions["gmall"].payments.start(order_sn, "mockpay")
        engine = db.engine
    params = notify_params(payment, app.extensions["gmall"].providers.get("mockpay").config.private_key)
    me, sent = threading.get_ident(), []

    def keep(_connection, _cursor, statement, *_):
        kind = statement.split(None, 1)[0].upper()
        if threading.get_ident() == me and kind != "BEGIN":  # not the worker's; SQLite's own BEGIN
            sent.append(kind)

    event.listen(engine, "before_cursor_execute", keep)
    try:
        assert client.post("/notify/mockpay", data=params).text == "success"
        paying, sent[:] = Counter(sent), []
        assert client.post("/notify/mockpay", data=params).text == "success"  # the provider retrying
        copy = Counter(sent)
    finally:
        event.remove(engine, "before_cursor_execute", keep)

    assert paying == {"SELECT": 1, "UPDATE": 2, "INSERT": 3}
    assert copy == {"SELECT": 2, "INSERT": 1}  # the payment, the notify_id's log, the log
