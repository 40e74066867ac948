"""Finding 5, ids: an id the database cannot hold (int converters take 2^63 and more) is a 404
on every route that takes one, never an OverflowError and a 500."""

import pytest
from support.forms import log_in, operator_login

TOO_BIG = [2**63, 2**64 + 1, 10**40]
ROUTES = [
    "/api/operator/payments/{id}",
    "/api/operator/payments/{id}/refunds",
    "/operator/payments/{id}",
    "/seckill/{id}",
]


@pytest.fixture
def operator(app, client):
    log_in(client)  # the click wants a member (and a member's login clears the session: first)
    operator_login(client, app.config["OPERATOR_TOKEN"])
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {app.config['OPERATOR_TOKEN']}"
    return client


@pytest.mark.parametrize("number", TOO_BIG)
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("accept", ["application/json", "text/html"])
def test_an_id_out_of_range_is_not_found(operator, route, number, accept):
    path = route.format(id=number)
    if path.endswith("/refunds"):
        answer = operator.post(
            path, json={"amount": "1.00", "out_request_no": "R-1"}, headers={"Accept": accept}
        )
    else:
        answer = operator.get(path, headers={"Accept": accept})
    assert answer.status_code == 404


@pytest.mark.parametrize("route", ["/api/operator/payments/{id}", "/operator/payments/{id}"])
def test_the_largest_id_is_looked_up(operator, route):
    assert operator.get(route.format(id=2**63 - 1)).status_code == 404


def test_a_cookie_that_is_not_utf8_is_no_500(app):
    """Found by test_fuzz.py: a Cookie header is latin-1 on the wire, and Flask reads it leniently."""
    client = app.test_client(use_cookies=False)
    assert client.get("/orders", headers={"Cookie": "\x80"}).status_code == 302
    assert (
        client.get("/seckill/1", headers={"Cookie": "\x80", "Accept": "application/json"}).status_code == 401
    )
