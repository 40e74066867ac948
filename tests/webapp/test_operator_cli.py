"""The operators' commands say what they found, in words people read: nothing matched, no such
order, the gate lives elsewhere, statuses with their Chinese names."""

from support.shop import member_orders


def test_empty_listings_say_nothing_matched(runner):
    listed = runner.invoke(args=["payments", "list", "--attention", "flagged"])
    assert listed.exit_code == 0 and "no payment matched (attention flagged)" in listed.output
    heard = runner.invoke(args=["notifications", "list", "--provider", "alipay"])
    assert heard.exit_code == 0 and "no notification matched (provider alipay)" in heard.output


def test_replaying_a_step_of_an_order_that_does_not_exist_says_so(runner):
    replayed = runner.invoke(args=["replay", "award_points", "NOPE"])
    assert replayed.exit_code == 1
    assert "no order NOPE" in replayed.output and "again" not in replayed.output


def test_seckill_list_on_the_embedded_default_explains_the_units_left(runner):
    listed = runner.invoke(args=["seckill", "list"])
    assert listed.exit_code == 0 and "SKU 1004" in listed.output
    assert "left -" not in listed.output
    assert "the web server's process" in listed.output  # where the embedded gate counts them


def test_statuses_are_shown_as_people_read_them(app, runner):
    with app.app_context():
        payment = app.extensions["gmall"].payments.start(member_orders(app)[0], "mockpay")
    listed = runner.invoke(args=["payments", "list"])
    assert (
        f"#{payment.id} {payment.order_sn} (order: awaiting payment (待付款)) mockpay: unpaid (未支付)"
        in listed.output
    )
    refused = runner.invoke(args=["payments", "refund", str(payment.id), "1.00", "--key", "R-1"])
    assert refused.exit_code == 1 and f"payment #{payment.id}: unpaid (未支付)" in refused.output
