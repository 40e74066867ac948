"""Posting the shop's CSRF-protected forms from a Flask test client, as a browser would; logging in."""

from support.shop import csrf_token


def post_form(client, path, data, **kwargs):
    """GET ``path`` for its form's CSRF token, then POST ``data`` with it to the same URL."""
    page = client.get(path, query_string=kwargs.get("query_string"))
    return client.post(path, data={**data, "csrf_token": csrf_token(page.text)}, **kwargs)


def log_in(client, username="demo", password=None, **kwargs):
    """Log ``client`` in through the login form, as a shopper does; the answer. A demo member's
    password is their name and "123" (demo123, alice123)."""
    return post_form(
        client, "/login", {"username": username, "password": password or f"{username}123"}, **kwargs
    )


def logged_in(app, username="demo", password=None):
    """A new test client of ``app``, logged in (the login must succeed: a redirect)."""
    client = app.test_client()
    answer = log_in(client, username, password)
    assert answer.status_code == 302, f"{username} could not log in: {answer.status_code}"
    return client


def operator_login(client, token, **kwargs):
    return post_form(client, "/operator/login", {"token": token}, **kwargs)


def copied(app, client):
    """Another browser holding a copy of ``client``'s session cookie."""
    thief = app.test_client()
    thief.set_cookie("session", client.get_cookie("session").value)
    return thief


def log_out(client):
    page = client.get("/orders")
    assert page.status_code == 200
    assert client.post("/logout", data={"csrf_token": csrf_token(page.text)}).status_code == 302


def set_password(app, username, password, confirm=None):
    """``gmall-payment members set-password`` (the password typed twice); its result."""
    return app.test_cli_runner().invoke(
        args=["members", "set-password", username], input=f"{password}\n{confirm or password}\n"
    )
