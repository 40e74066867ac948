"""The operator's commands: the notify log (list, show, replay)."""

from datetime import datetime

from support.shop import member_orders, notify_log

from gmall_payment.plugins.alipay.gateway import make_gateway_app


def test_list_show_and_replay_a_notify_refused_before_its_payment_existed(app, client, runner):
    gateway = make_gateway_app(app.config)
    order_sn = member_orders(app)[0]
    with app.app_context():
        amount = app.extensions["gmall"].payments.uow().orders.get(order_sn).pay_amount
    gateway.ledger.open(order_sn, amount, "谷粒商城-x", None, None, datetime(2024, 1, 1))
    trade = gateway.ledger.pay(order_sn, datetime(2024, 1, 1))
    params = gateway.notify_params(trade)  # signed with the instance's gateway key, as the mounted one signs

    early = client.post("/pay/success", data=params)
    assert early.text == "failure"  # no payment yet: unknown_trade
    listed = runner.invoke(args=["notifications", "list"])
    [record] = notify_log(app)
    assert (
        f"#{record.id}" in listed.output and "unknown_trade" in listed.output and "failure" in listed.output
    )

    shown = runner.invoke(args=["notifications", "show", str(record.id)])
    assert params["notify_id"] in shown.output and '"trade_status": "TRADE_SUCCESS"' in shown.output

    with app.app_context():
        app.extensions["gmall"].payments.start(order_sn, "alipay")
    replayed = runner.invoke(args=["notifications", "replay", str(record.id)])
    assert replayed.exit_code == 0 and ": paid -> success" in replayed.output
    assert [(e.outcome, e.replay_of) for e in notify_log(app)] == [
        ("unknown_trade", None),
        ("paid", record.id),
    ]
    assert "replay-of" in runner.invoke(args=["notifications", "list", "--provider", "alipay"]).output
    with app.app_context(), app.extensions["gmall"].payments.uow() as uow:
        [payment] = uow.payments.for_order(order_sn)
    assert payment.payment_type_code == 1  # the seed's payment_type of Alipay
    shown = runner.invoke(args=["payments", "show", str(payment.id)])
    assert "  payment_type 1 (the seed's code of alipay)\n" in shown.output, shown.output
    missing = runner.invoke(args=["notifications", "show", "999"])
    assert missing.exit_code != 0 and "no notification #999" in missing.output
