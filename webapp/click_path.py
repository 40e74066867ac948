"""The click's fast path: ``GET /seckill/<sku_id>`` from an API client of a signed-in member,
answered beneath Flask's request machinery.

Under a burst the click is nearly all the shop serves, and Flask's per-request work (its
contexts, routing, hooks, request and response objects) costs more than the click's own:
the session check and the one reservation round trip (benchmarks/seckill_burst.py gives the
figures). This layer reads the same signed session cookie as Flask's cookie session does
(its serializer, made once), checks its session generation against the database's as
``context.current_member`` does (``adapters/session_cache.py``: read only for the members whose
sessions ended within a cookie's lifetime, which each process loads and Redis announces), refuses
a click another page made as the view does (``same_origin``), calls the same service and
builds the same answer (``seckill.click_answer``). Everything else (browsers, which get
pages; strangers and ended sessions, which get 401; other paths) goes on to Flask.
"""

import functools
import json
import re
import time
from http import HTTPStatus

from flask import Flask, url_for
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadSignature
from werkzeug.sansio.http import parse_cookie

from ..adapters.bootstrap import Services
from ..adapters.metrics import METRICS
from ..adapters.session_cache import SessionCache
from ..core.seckill import Outcome
from .context import EPOCH, MEMBER
from .same_origin import from_this_origin
from .seckill import NOT_SAME_ORIGIN, RATE_LIMITED, click_answer

#: The click's path as Flask's ``<id:sku_id>`` matches it (no sign, no leading zero).
CLICK = re.compile(r"/seckill/([1-9][0-9]{0,17})\Z")
FAILED = {"error": "internal_server_error", "message": "秒杀暂时不可用,请稍后再试"}
#: Session cookies a process remembers having verified (about 350 bytes each), each until its
#: max age: verifying one (HMAC, base64, tagged JSON) costs a click about what its reservation
#: does. The session generation is checked on every click (a logout ends the session at once).
VERIFIED_COOKIES = 32_768


def prefers_json(accept: str) -> bool:
    """True only where ``seckill.wants_json`` is sure to say JSON: no HTML or text asked for
    (``*/*`` rates both alike, and such clients get JSON). Anything else is Flask's to weigh."""
    return "html" not in accept and "text/" not in accept


class ClickPath:
    """WSGI middleware in front of the Flask app ``app``, whose sessions must be Flask's
    signed cookies (the member is read from them as Flask would); ``epochs`` says whether a
    cookie's session generation is its member's current one."""

    def __init__(self, app: Flask, services: Services, epochs: SessionCache):
        if not isinstance(app.session_interface, SecureCookieSessionInterface):
            raise TypeError("the click's fast path reads Flask's signed-cookie sessions only")
        self.app = app
        self.services = services
        self.next = app.wsgi_app
        self.serializer = app.session_interface.get_signing_serializer(app)
        self.cookie_name = app.session_interface.get_cookie_name(app)
        self.max_age = int(app.permanent_session_lifetime.total_seconds())
        self._verified = functools.lru_cache(maxsize=VERIFIED_COOKIES)(self._verify)
        with app.test_request_context():
            self.pay_path = url_for("seckill.pay", orderSn="")  # the order number goes last
        self.epochs = epochs
        self.statuses = {
            code: f"{code} {HTTPStatus(code).phrase}" for code in (200, 403, 404, 409, 410, 429, 500, 503)
        }

    def open_connections(self, count: int) -> None:
        """Connect what ``count`` clicks at once need (the gate's Redis connections, the session
        generations' database pool and their cache's subscription) before the first click: a
        burst then opens none."""
        self.services.seckill.gate.open_connections(count)
        self.epochs.open(count)

    def __call__(self, environ, start_response):
        match = CLICK.match(environ.get("PATH_INFO", ""))
        if (
            match is None
            or environ["REQUEST_METHOD"] != "GET"
            or not prefers_json(environ.get("HTTP_ACCEPT", "*/*"))
        ):
            return self.next(environ, start_response)
        signed = self._signed(environ)
        if signed is None:
            return self.next(environ, start_response)
        member_id, epoch = signed
        headers = [
            ("Content-Type", "application/json"),
            ("Vary", "Cookie"),
            ("X-Content-Type-Options", "nosniff"),
        ]
        try:
            ended = not self.epochs.current(member_id, epoch)
            if not ended:
                status, answer = self._click(environ, member_id, int(match[1]), headers)
        except Exception:
            self.app.logger.exception("click on %s by member %s failed", match[1], member_id)
            METRICS.click("failed")
            ended, status, answer = False, 500, FAILED
        if ended:  # logged out or the password changed: Flask forgets the session and answers 401
            return self.next(environ, start_response)
        body = (json.dumps(answer, separators=(",", ":")) + "\n").encode()
        headers.append(("Content-Length", str(len(body))))
        start_response(self.statuses[status], headers)
        return [body]

    def _click(self, environ, member_id, sku_id, headers):
        """The view's answer to the signed-in member's click (``seckill.click``)."""
        if not from_this_origin(environ, browser=False):
            METRICS.click(NOT_SAME_ORIGIN["outcome"])
            return 403, NOT_SAME_ORIGIN
        self.services.bus.start()  # as Flask's first request does (the embedded worker)
        result = self.services.seckill.click(member_id, sku_id, environ.get("REMOTE_ADDR") or "")
        METRICS.click(result.outcome.value)  # in this process: no round trip
        if result.outcome is Outcome.RATE_LIMITED:
            headers.append(("Retry-After", str(result.retry_after)))
            return 429, RATE_LIMITED
        if result.retry_after is not None:  # the gate did not answer in time
            headers.append(("Retry-After", str(result.retry_after)))
        script_root = environ.get("SCRIPT_NAME", "").rstrip("/")
        return click_answer(result, f"{script_root}{self.pay_path}".__add__)

    def _signed(self, environ):
        """(member, session generation) of a valid session cookie, else None (Flask would
        see an empty session)."""
        # The header is latin-1 on the wire; read it leniently, as Flask's request does.
        raw = environ.get("HTTP_COOKIE", "").encode("latin-1", "replace").decode("utf-8", "replace")
        cookie = parse_cookie(cookie=raw).get(self.cookie_name)
        if not self.serializer or not cookie:
            return None
        verified = self._verified(cookie)
        if verified is None or time.time() >= verified[2]:  # not valid, or past its max age since
            return None
        return verified[:2]

    def _verify(self, cookie):
        """(member, session generation, until when the cookie counts) of a valid session cookie
        naming a member, else None; remembered (``VERIFIED_COOKIES``)."""
        try:
            session, signed_at = self.serializer.loads(cookie, max_age=self.max_age, return_timestamp=True)
        except BadSignature:
            return None
        if MEMBER not in session:
            return None
        return session[MEMBER], session.get(EPOCH), signed_at.timestamp() + self.max_age
