"""The operator page's search and forms over HTTP: the same refund service as the API, behind the
CSRF token; the listing puts what needs an operator first."""

from sqlalchemy import update
from support.forms import operator_login
from support.shop import csrf_token, make_app, member_orders

from gmall_payment.adapters.sql.models import PaymentInfo, db
from gmall_payment.core.model import PaymentStatus, RefundReason


def started(app, count):
    with app.app_context():
        return [app.extensions["gmall"].payments.start(sn, "mockpay") for sn in member_orders(app)[:count]]


def logged_in(app):
    """A new test client of ``app``, logged in as its operator."""
    client = app.test_client()
    operator_login(client, app.config["OPERATOR_TOKEN"])
    return client


def changed(app, payment, **values):
    """``payment``'s row changed to ``values`` in the database."""
    with app.app_context():
        db.session.execute(update(PaymentInfo).where(PaymentInfo.id == payment.id).values(**values))
        db.session.commit()


def test_search_by_order_number_prefix_then_flagged_then_owed_first(app, client):
    first, second, third = started(app, 3)
    changed(app, first, flag="look")
    changed(app, second, payment_status=int(PaymentStatus.PAID), refund_reason=RefundReason.PAID_TWICE)
    bearer = {"Authorization": f"Bearer {app.config['OPERATOR_TOKEN']}"}

    found = client.get(f"/api/operator/payments?q={second.order_sn[:-2]}", headers=bearer).json["payments"]
    assert [p["id"] for p in found] == [second.id]
    assert (
        client.get("/api/operator/payments?q=%25", headers=bearer).json["payments"] == []
    )  # % is no wildcard
    assert [p["id"] for p in client.get("/api/operator/payments", headers=bearer).json["payments"]] == [
        third.id,
        second.id,
        first.id,
    ]  # the API: newest first

    page = logged_in(app).get("/operator/payments").text
    rows = [page.index(f'id="payment-{p.id}"') for p in (first, second, third)]
    assert rows == sorted(rows)  # the page: the flagged first, then the owed back, then the newest
    assert f'id="payment-{second.id}" class="owed"' in page


def test_the_refund_form_wants_the_csrf_token_and_says_what_the_service_refused(tmp_path):
    app = make_app(tmp_path)
    [payment] = started(app, 1)
    client = logged_in(app)
    story = client.get(f"/operator/payments/{payment.id}")
    assert story.status_code == 200 and 'id="refund-form"' not in story.text  # unpaid: nothing to refund

    forged = client.post(
        f"/operator/payments/{payment.id}/refunds", data={"amount": "1.00", "out_request_no": "K"}
    )
    assert forged.status_code == 400  # no CSRF token: refused before the service is asked

    refused = client.post(
        f"/operator/payments/{payment.id}/refunds",
        follow_redirects=True,
        data={"amount": "1.00", "out_request_no": "K", "csrf_token": csrf_token(story.text)},
    )
    assert refused.status_code == 200 and "notice-refused" in refused.text
    assert f"payment #{payment.id}: unpaid (未支付)" in refused.text
    with app.app_context():
        assert app.extensions["gmall"].refunds.uow().refunds.for_payment(payment.id) == []
    missing = client.post(
        "/operator/payments/999/refunds",
        data={"amount": "1", "out_request_no": "K", "csrf_token": csrf_token(story.text)},
    )
    assert missing.status_code == 404


def test_search_by_an_out_trade_no_that_is_not_the_order_number(app):
    first, second = started(app, 2)
    changed(app, second, out_trade_no=f"RETRY-{second.order_sn}")  # the demo's are their order numbers
    client = logged_in(app)

    found = client.get("/operator/payments", query_string={"q": "RETRY-"}).text  # as the search box says
    assert f'id="payment-{second.id}"' in found and f'id="payment-{first.id}"' not in found
    assert f"out_trade_no RETRY-{second.order_sn}" in found  # shown beside its order number
    by_order = client.get("/operator/payments", query_string={"q": second.order_sn}).text
    assert f'id="payment-{second.id}"' in by_order  # its order number still finds it
