"""Finding 8 (in part): password guessing on ``/login`` and ``/operator/login`` is throttled,
per account and per address, with a 429 and Retry-After, the same for accounts that do not
exist; failures count, successes do not."""

import os
import re
import uuid

import pytest
import redis
from support.forms import log_in, operator_login
from support.mariadb import unavailable
from support.shop import make_app


def logged_in(client):
    with client.session_transaction() as session:
        return "member_id" in session


def answers(client, times, username="demo", password="wrong", **kwargs):
    return [log_in(client, username, password, **kwargs).status_code for _ in range(times)]


def test_thirty_wrong_passwords_are_throttled_after_five(client):
    assert answers(client, 30) == [200] * 5 + [429] * 25
    last = log_in(client, "demo", "wrong")
    assert 1 <= int(last.headers["Retry-After"]) <= 60
    assert "too many attempts" in last.text


def test_while_throttled_even_the_right_password_is_turned_away(client):
    answers(client, 5)
    assert log_in(client).status_code == 429
    assert not logged_in(client)


def test_an_unknown_account_gets_the_same_limit_and_answer(client):
    unknown = answers(client, 7, username="nobody-here")
    known = answers(client, 7, username="alice", environ_base={"REMOTE_ADDR": "10.0.0.2"})
    assert unknown == known == [200] * 5 + [429] * 2

    def page(answer):
        return re.sub(r'(name="csrf_token" value|nonce)="[^"]+"', "", answer.text)

    assert page(log_in(client, "nobody-here", "x")) == page(log_in(client, "alice", "x"))


def test_the_case_and_spaces_of_a_username_share_its_count(client):
    for name in ("demo", "DEMO", " demo ", "Demo", "demo "):
        log_in(client, name, "wrong")
    assert log_in(client, "demo", "wrong").status_code == 429


def test_a_success_resets_the_accounts_count(client):
    answers(client, 4)
    assert log_in(client).status_code == 302
    assert answers(client, 6) == [200] * 5 + [429]


def test_successes_are_not_counted(client):
    assert set(answers(client, 40, password="demo123")) == {302}


def test_one_address_guessing_many_accounts_is_throttled(client):
    statuses = [log_in(client, f"user{n}", "wrong").status_code for n in range(31)]
    assert statuses == [200] * 30 + [429]
    elsewhere = log_in(client, "user99", "wrong", environ_base={"REMOTE_ADDR": "10.0.0.3"})
    assert elsewhere.status_code == 200


def test_an_account_is_throttled_from_every_address(client):
    for n in range(5):
        log_in(client, "demo", "wrong", environ_base={"REMOTE_ADDR": f"10.0.1.{n}"})
    assert log_in(client, environ_base={"REMOTE_ADDR": "10.0.1.9"}).status_code == 429


@pytest.mark.settings(LOGIN_RATE_LIMIT_ACCOUNT="2/minute", LOGIN_RATE_LIMIT_IP="3/minute")
def test_the_limits_are_settings(client):
    assert answers(client, 3) == [200, 200, 429]
    assert answers(client, 2, username="alice") == [200, 429]  # the address's third failure


def test_thirty_wrong_operator_tokens_are_throttled_after_five(app, client):
    statuses = [operator_login(client, f"wrong-token-{n}").status_code for n in range(30)]
    assert statuses == [401] * 5 + [429] * 25
    turned_away = operator_login(client, app.config["OPERATOR_TOKEN"])
    assert turned_away.status_code == 429 and 1 <= int(turned_away.headers["Retry-After"]) <= 60
    with client.session_transaction() as session:
        assert "operator" not in session


@pytest.mark.parametrize("path", ["/login", "/operator/login"])
def test_looking_at_the_form_is_not_counted(client, path):
    assert {client.get(path).status_code for _ in range(40)} == {200}


@pytest.mark.redis
def test_with_redis_every_host_shares_the_count(tmp_path):
    """Two web hosts on one Redis: guesses spread over both are counted together."""
    url = os.environ.get("GMALL_TEST_REDIS_URL")
    if not url:
        unavailable("GMALL_TEST_REDIS_URL is unset")
    namespace = f"gmall-test-{uuid.uuid4().hex[:8]}"
    hosts = [
        make_app(tmp_path / name, REDIS_URL=url, REDIS_NAMESPACE=namespace, OPERATOR_TOKEN="t" * 32)
        for name in ("a", "b")
    ]
    try:
        statuses = [log_in(hosts[n % 2].test_client(), "demo", "wrong").status_code for n in range(6)]
        assert statuses == [200] * 5 + [429]
        assert log_in(hosts[0].test_client()).status_code == 429
    finally:
        client = redis.Redis.from_url(url)
        for pattern in (f"LIMITS:LIMITER/{namespace}/*", f"{namespace}*"):
            keys = list(client.scan_iter(pattern))
            if keys:
                client.delete(*keys)
        for host in hosts:
            host.extensions["gmall"].bus.close()


@pytest.mark.settings(REDIS_URL="redis://127.0.0.1:1/0", OPERATOR_TOKEN="t" * 32)  # nothing listens there
def test_while_redis_cannot_be_reached_logins_are_counted_in_the_process(caplog, client):
    assert answers(client, 6) == [200] * 5 + [429]
    assert caplog.text.count("rate limits counted in this process: their storage cannot be reached") == 1
