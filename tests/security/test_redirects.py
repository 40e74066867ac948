"""Finding 3 (open redirect after login) and the header-breaking half of finding 5: the
``next=`` of both login forms goes only to a path of this site, the way a browser would read
it; anything else goes to the home page, and a value that would break the Location header is
a 400 that logs nobody in."""

import pytest
from support.forms import log_in, operator_login

#: What browsers (the WHATWG URL parser) turn into another site, or into no path at all.
ELSEWHERE = [
    "/\t/evil.example",  # the finding: tabs and newlines are dropped, leaving //evil.example
    "/\\evil.example",  # a backslash is a slash to browsers
    "\\\\evil.example",
    "/\\/evil.example",
    "//evil",
    "///evil",
    "https://evil",
    "https:evil",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    " //evil",  # leading spaces and C0 controls are stripped
    "\x00//evil",
    "\x1f/\t/evil",
    "／／evil.example",  # fullwidth solidus: not a path at all
    "\u3000//evil",
    "evil.example",  # not a path
    "",
]
#: What would put a newline into the Location header.
HEADER_BREAKING = ["/\n/x", "/\r/x", "/\r\nSet-Cookie: x=1", "\n//evil", "/orders\r"]


def member_id(client):
    with client.session_transaction() as session:
        return session.get("member_id")


@pytest.mark.parametrize("target", ELSEWHERE)
def test_login_never_sends_a_member_to_another_site(client, target):
    answer = log_in(client, query_string={"next": target})
    assert (answer.status_code, answer.headers["Location"]) == (302, "/orders")
    assert member_id(client) is not None


@pytest.mark.parametrize(
    "target", ["/orders?x=1", "/seckill", "/pay.html?orderToken=123", "/.//evil", "/a:b"]
)
def test_login_goes_on_to_a_path_of_this_site(client, target):
    answer = log_in(client, query_string={"next": target})
    assert (answer.status_code, answer.headers["Location"]) == (302, target)


def test_a_unicode_path_is_kept_and_encoded(client):
    answer = log_in(client, query_string={"next": "/订单?q=秒杀"})
    assert answer.headers["Location"] == "/%E8%AE%A2%E5%8D%95?q=%E7%A7%92%E6%9D%80"


@pytest.mark.parametrize("target", HEADER_BREAKING)
def test_a_header_breaking_next_is_a_400_and_logs_nobody_in(client, target):
    answer = log_in(client, query_string={"next": target})
    assert answer.status_code == 400
    assert "Location" not in answer.headers
    assert member_id(client) is None
    assert client.get("/orders").headers["Location"].startswith("/login")


@pytest.mark.parametrize("target", [*ELSEWHERE, "/orders", "/operatorx", "/operator\\..\\evil"])
def test_operator_login_stays_on_the_operator_pages(app, client, target):
    answer = operator_login(client, app.config["OPERATOR_TOKEN"], query_string={"next": target})
    assert (answer.status_code, answer.headers["Location"]) == (302, "/operator/payments")


def test_operator_login_goes_on_to_an_operator_page(app, client):
    answer = operator_login(
        client, app.config["OPERATOR_TOKEN"], query_string={"next": "/operator/payments?status=paid"}
    )
    assert (answer.status_code, answer.headers["Location"]) == (302, "/operator/payments?status=paid")


@pytest.mark.parametrize("target", [*HEADER_BREAKING, "/operator/\n/x", "/operator\r"])
def test_a_header_breaking_next_logs_no_operator_in(app, client, target):
    answer = operator_login(client, app.config["OPERATOR_TOKEN"], query_string={"next": target})
    assert answer.status_code == 400
    with client.session_transaction() as session:
        assert "operator" not in session
    assert client.get("/operator/payments").headers["Location"].startswith("/operator/login")
