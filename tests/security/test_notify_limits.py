"""Finding 4, notifications: a body over NOTIFY_MAX_BYTES is a 413 and stored nowhere (with or
without a Content-Length); what is stored fits a TEXT column on every database, marked when
cut; refused notifications are stored at most NOTIFY_REFUSED_LOG_PER_MINUTE per address."""

import io
import logging
from urllib.parse import urlencode

import pytest
from sqlalchemy import select
from support.mariadb import MYSQL_URL, mysql_database, mysql_server, unavailable  # noqa: F401 (a fixture)
from support.shop import make_app, notify_log, notify_params, snapshot

from gmall_payment.adapters.sql.models import Member, Order, PaymentInfo, db
from gmall_payment.core.truncation import truncated

LIMIT = 65536
TEXT_BYTES = 65535  # a TEXT column on MariaDB


def started(app):
    """One of demo's orders with a mockpay payment started, and the sandbox's signing key."""
    with app.app_context():
        member = db.session.scalar(select(Member).where(Member.username == "demo"))
        order = db.session.scalar(select(Order).where(Order.member_id == member.id).order_by(Order.id))
        payment = app.extensions["gmall"].payments.start(order.order_sn, "mockpay")
    return payment, app.extensions["gmall"].providers.get("mockpay").config.private_key


def padded(params_of, size):
    """The body of ``params_of(padding)`` made exactly ``size`` bytes long: its padding field,
    then empty fields (``&``), as the signature's url-encoding varies in length."""
    body = urlencode(params_of(""))
    body = urlencode(params_of("x" * (size - len(body) - 50)))
    return (body + "&" * (size - len(body))).encode()


def post(client, path, body, **kwargs):
    return client.post(path, data=body, content_type="application/x-www-form-urlencoded", **kwargs)


@pytest.mark.parametrize("path", ["/notify/alipay", "/pay/success", "/notify/mockpay"])
def test_ten_megabytes_are_refused_and_stored_nowhere(app, client, path):
    before = snapshot(app)
    answer = post(client, path, b"a=" + b"x" * (10 * 2**20))
    assert (answer.status_code, answer.text) == (413, "failure")
    assert notify_log(app) == [] and snapshot(app) == before


def test_a_body_without_a_length_is_cut_off_while_read(app, client):
    answer = client.post(
        "/notify/alipay",
        input_stream=io.BytesIO(b"a=" + b"x" * 200_000),
        content_type="application/x-www-form-urlencoded",
        environ_overrides={"wsgi.input_terminated": True},
    )  # as gunicorn says of chunked bodies
    assert (answer.status_code, answer.text) == (413, "failure")
    assert notify_log(app) == []


def test_one_byte_over_the_limit_is_refused(app, client):
    assert post(client, "/notify/alipay", b"a=" + b"x" * (LIMIT - 1)).status_code == 413
    assert notify_log(app) == []


@pytest.mark.settings(NOTIFY_MAX_BYTES=1000)
def test_the_limit_is_a_setting(app, client):
    assert post(client, "/notify/alipay", b"a=" + b"x" * 998).status_code == 200
    assert post(client, "/notify/alipay", b"a=" + b"x" * 999).status_code == 413
    assert len(notify_log(app)) == 1


def test_a_refused_body_at_the_limit_is_kept_cut_to_what_a_text_column_holds(app, client):
    answer = post(client, "/notify/alipay", b"a=" + b"x" * (LIMIT - 2))
    assert (answer.status_code, answer.text) == (200, "failure")
    [row] = notify_log(app)
    assert len(row.raw.encode()) <= TEXT_BYTES and truncated(row.raw)
    assert row.raw.startswith("a=xxx") and row.raw.endswith(f"of {LIMIT} bytes kept]")


def test_a_body_that_is_not_utf8_is_kept_within_the_column(app, client):
    post(client, "/notify/alipay", b"a=" + b"\xff" * 60_000)  # each becomes U+FFFD: three bytes
    [row] = notify_log(app)
    assert len(row.raw.encode()) <= TEXT_BYTES and truncated(row.raw)


def test_an_accepted_notification_is_kept_whole_when_it_fits(app, client):
    payment, key = started(app)
    body = padded(lambda pad: notify_params(payment, key, padding=pad), 60_000)
    assert post(client, "/notify/mockpay", body).text == "success"
    app.extensions["gmall"].bus.join()
    [row] = notify_log(app)
    assert (row.accepted, row.raw) == (True, body.decode())
    with app.app_context():
        assert "x" * 59_000 in db.session.get(PaymentInfo, payment.id).callback_content  # the fields, whole


def test_an_accepted_notification_too_long_for_the_column_is_cut_and_says_so(app, client, caplog, runner):
    payment, key = started(app)
    body = padded(lambda pad: notify_params(payment, key, padding=pad), LIMIT)
    assert post(client, "/notify/mockpay", body).text == "success"
    app.extensions["gmall"].bus.join()
    [row] = notify_log(app)
    assert row.accepted and truncated(row.raw) and len(row.raw.encode()) <= TEXT_BYTES
    assert f"raw body of {LIMIT} bytes is kept truncated to {TEXT_BYTES} bytes" in caplog.text
    with app.app_context():
        kept = db.session.get(PaymentInfo, payment.id).callback_content
    assert len(kept.encode()) <= TEXT_BYTES
    replayed = runner.invoke(args=["notifications", "replay", str(row.id)])
    assert replayed.exit_code != 0 and "kept truncated" in replayed.output


@pytest.mark.settings(NOTIFY_REFUSED_LOG_PER_MINUTE=3)
def test_refused_notifications_are_kept_a_few_a_minute_per_address(caplog, app, client):
    caplog.set_level(logging.WARNING)
    answers = [post(client, "/notify/alipay", b"a=1").text for _ in range(6)]
    assert answers == ["failure"] * 6
    assert len(notify_log(app)) == 3
    assert caplog.text.count("refused and not stored: over NOTIFY_REFUSED_LOG_PER_MINUTE (3)") == 1
    other = post(client, "/notify/alipay", b"a=2", environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.text == "failure" and len(notify_log(app)) == 4


@pytest.mark.settings(NOTIFY_REFUSED_LOG_PER_MINUTE=1)
def test_an_accepted_notification_is_kept_past_the_bound(app, client):
    for _ in range(3):
        post(client, "/notify/mockpay", b"a=1")
    payment, key = started(app)
    assert client.post("/notify/mockpay", data=notify_params(payment, key)).text == "success"
    app.extensions["gmall"].bus.join()
    assert [row.accepted for row in notify_log(app)] == [False, True]


# on MariaDB, where TEXT holds 65,535 bytes


@pytest.fixture
def mariadb_app(tmp_path, request):
    if not MYSQL_URL:
        unavailable("GMALL_TEST_MYSQL_URL is unset")
    with mysql_database(request.getfixturevalue("mysql_server")) as url:
        app = make_app(tmp_path, DATABASE_URL=url)
        yield app
        app.extensions["gmall"].bus.close()
        with app.app_context():
            db.engine.dispose()


@pytest.mark.mariadb
def test_on_mariadb_70_kb_is_a_413_and_64_kb_is_kept(mariadb_app):
    client = mariadb_app.test_client()
    assert post(client, "/notify/alipay", b"a=" + b"x" * 70_000).status_code == 413
    refused = post(client, "/notify/alipay", b"a=" + b"x" * (LIMIT - 2))
    assert (refused.status_code, refused.text) == (200, "failure")
    payment, key = started(mariadb_app)
    accepted = post(
        client, "/notify/mockpay", padded(lambda pad: notify_params(payment, key, padding=pad), LIMIT)
    )
    assert (accepted.status_code, accepted.text) == (200, "success")
    mariadb_app.extensions["gmall"].bus.join()
    rows = notify_log(mariadb_app)
    assert [row.accepted for row in rows] == [False, True]
    assert all(truncated(row.raw) and len(row.raw.encode()) <= TEXT_BYTES for row in rows)
