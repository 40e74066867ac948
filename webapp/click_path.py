"""The click's fast path: ``GET /seckill/<sku_id>`` from an API client of a signed-in member,
answered beneath Flask's request machinery.

Under a burst the click is nearly all the shop serves, and Flask's per-request work (its
contexts, routing, hooks, request and response objects) costs more than the click's own:
the session check and the one reservation round trip (benchmarks/seckill_burst.py gives the
figures). This layer reads the same signed session cookie as Flask's cookie session does
(its serializer, made once), calls the same service and builds the same answer
(``seckill.click_answer``). Everything else (browsers, which get pages; strangers, who get
401; other paths) goes on to Flask.
"""

import json
import re
from http import HTTPStatus

from flask import Flask, url_for
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadSignature
from werkzeug.http import parse_cookie

from ..adapters.bootstrap import Services
from ..core.seckill import Outcome
from .seckill import RATE_LIMITED, click_answer

#: The click's path as Flask's ``<int:sku_id>`` matches it (no sign, no leading zero).
CLICK = re.compile(r"/seckill/([1-9][0-9]{0,17})\Z")
FAILED = {"error": "internal_server_error", "message": "秒杀暂时不可用,请稍后再试"}


def prefers_json(accept: str) -> bool:
    """True only where ``seckill.wants_json`` is sure to say JSON: no HTML or text asked for
    (``*/*`` rates both alike, and such clients get JSON). Anything else is Flask's to weigh."""
    return "html" not in accept and "text/" not in accept


class ClickPath:
    """WSGI middleware in front of the Flask app ``app``, whose sessions must be Flask's
    signed cookies (the member is read from them as Flask would)."""

    def __init__(self, app: Flask, services: Services):
        if not isinstance(app.session_interface, SecureCookieSessionInterface):
            raise TypeError("the click's fast path reads Flask's signed-cookie sessions only")
        self.app = app
        self.services = services
        self.next = app.wsgi_app
        self.serializer = app.session_interface.get_signing_serializer(app)
        self.cookie_name = app.session_interface.get_cookie_name(app)
        self.max_age = int(app.permanent_session_lifetime.total_seconds())
        with app.test_request_context():
            self.pay_path = url_for("seckill.pay", orderSn="")  # the order number goes last
        self.statuses = {code: f"{code} {HTTPStatus(code).phrase}" for code in (200, 403, 404, 409, 410, 429, 500)}

    def __call__(self, environ, start_response):
        match = CLICK.match(environ.get("PATH_INFO", ""))
        if match is None or environ["REQUEST_METHOD"] != "GET" or not prefers_json(environ.get("HTTP_ACCEPT", "*/*")):
            return self.next(environ, start_response)
        member_id = self._member_id(environ)
        if member_id is None:
            return self.next(environ, start_response)
        headers = [("Content-Type", "application/json"), ("Vary", "Cookie")]
        try:
            self.services.bus.start()  # as Flask's first request does (the embedded worker)
            result = self.services.seckill.click(member_id, int(match[1]), environ.get("REMOTE_ADDR") or "")
        except Exception:
            self.app.logger.exception("click on %s by member %s failed", match[1], member_id)
            status, answer = 500, FAILED
        else:
            if result.outcome is Outcome.RATE_LIMITED:
                status, answer = 429, RATE_LIMITED
                headers.append(("Retry-After", str(result.retry_after)))
            else:
                script_root = environ.get("SCRIPT_NAME", "").rstrip("/")
                status, answer = click_answer(result, f"{script_root}{self.pay_path}".__add__)
        body = (json.dumps(answer, separators=(",", ":")) + "\n").encode()
        headers.append(("Content-Length", str(len(body))))
        start_response(self.statuses[status], headers)
        return [body]

    def _member_id(self, environ):
        """The member of a valid session cookie, else None (Flask would see an empty session)."""
        cookie = parse_cookie(environ).get(self.cookie_name)
        if not self.serializer or not cookie:
            return None
        try:
            return self.serializer.loads(cookie, max_age=self.max_age).get("member_id")
        except BadSignature:
            return None
