"""What the simulated provider sites share: notification delivery with retries, pages, WSGI dispatch.

A provider's sandbox (mockpay's cashier, the offline Alipay gateway) posts signed
notifications to the shop from background threads and retries them on a schedule until the
shop reads back ``success``, exactly as the real providers do; it renders its own small HTML
pages from its package's ``templates/`` folder.
"""

import http.client
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from html import escape
from importlib import resources
from string import Template
from urllib.parse import urlencode

from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.routing import Map
from werkzeug.wrappers import Request, Response

from ..ports.settings import number
from .urls import FORM_TYPE

log = logging.getLogger(__name__)

ACKNOWLEDGED = "success"


def parse_schedule(value, key: str) -> tuple[float, ...]:
    """Waits in seconds before each delivery attempt, from ``"0,1,2"`` or a list of numbers."""
    items = value.split(",") if isinstance(value, str) else value
    schedule = tuple(number(item, key, unit="seconds") for item in items)
    if not schedule:
        raise ValueError(f"{key} must list at least one wait")
    return schedule


@dataclass(frozen=True)
class Attempt:
    """One delivery of a notification and what came back (``status`` None: no HTTP answer)."""

    url: str
    notify_id: str
    status: int | None
    body: str
    at: float = 0.0  # time.monotonic() when the answer came

    @property
    def acknowledged(self) -> bool:
        return self.status == 200 and self.body == ACKNOWLEDGED


class Notifier:
    """Posts notifications from daemon threads, retrying until the shop reads back ``success``.

    ``schedule`` is the wait in seconds before each attempt, so its length bounds the attempts
    of one delivery. ``attempts`` and ``join`` let tests and operators see what happened.
    """

    def __init__(self, schedule: Sequence[float], timeout: float = 10.0, name: str = "sandbox"):
        self.schedule = tuple(schedule)
        self.timeout = timeout
        self.name = name
        self._attempts: list[Attempt] = []
        self._pending = 0
        self._idle = threading.Condition()
        # The shop is called directly, as the provider would: never through the environment's proxy.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    @property
    def attempts(self) -> list[Attempt]:
        with self._idle:
            return list(self._attempts)

    def send(self, url: str, params: Mapping[str, str], copies: int = 1, first_wait: float | None = None):
        """Deliver ``params`` ``copies`` times, one after the other, in a background thread.

        ``first_wait`` replaces the schedule's first wait (a late notification).
        """
        waits = self.schedule if first_wait is None else (first_wait, *self.schedule[1:])
        body = urlencode(params).encode("utf-8")
        with self._idle:
            self._pending += 1
        threading.Thread(
            target=self._run,
            args=(url, params["notify_id"], body, waits, copies),
            name=f"{self.name}-notify-{params.get('out_trade_no', '')}",
            daemon=True,
        ).start()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until no delivery is in progress; False if ``timeout`` ran out first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _run(self, url, notify_id, body, waits, copies):
        try:
            for _ in range(copies):
                self._deliver(url, notify_id, body, waits)
        finally:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def _deliver(self, url, notify_id, body, waits):
        for wait in waits:
            time.sleep(wait)
            attempt = Attempt(url, notify_id, *self._post(url, body), at=time.monotonic())
            with self._idle:
                self._attempts.append(attempt)
            log.info(
                "%s notify %s to %s: %s %r", self.name, notify_id, url, attempt.status, attempt.body[:100]
            )
            if attempt.acknowledged:
                return
        log.warning("%s gave up notify %s to %s after %d attempts", self.name, notify_id, url, len(waits))

    def _post(self, url: str, body: bytes) -> tuple[int | None, str]:
        request = urllib.request.Request(url, data=body, headers={"Content-Type": FORM_TYPE}, method="POST")
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return response.status, _text(response)
        except urllib.error.HTTPError as error:
            with error:
                return error.code, _text(error)
        except (OSError, http.client.HTTPException) as error:
            return None, f"{type(error).__name__}: {error}"


def _text(response) -> str:
    """The start of a response body, enough to see whether it is ``success``."""
    return response.read(4096).decode("utf-8", "replace")


@cache
def _template(package: str, name: str) -> Template:
    return Template(resources.files(package).joinpath("templates", name).read_text("utf-8"))


def page(package: str, name: str, status: int = 200, **values) -> Response:
    """An HTML page from ``package``'s ``templates/``; every value is escaped, so none can inject markup."""
    html = _template(package, name).substitute({key: escape(str(value)) for key, value in values.items()})
    return Response(html, status=status, content_type="text/html; charset=utf-8")


def error_page(package: str, status: int, message: str, **values) -> Response:
    """``package``'s ``error.html`` with the standard reason phrase as its title."""
    return page(package, "error.html", status, title=HTTP_STATUS_CODES[status], message=message, **values)


class Site:
    """A small WSGI site: ``url_map`` endpoints are served by ``on_<endpoint>(request, urls, **args)``."""

    url_map: Map

    def __call__(self, environ, start_response):
        request = Request(environ)
        urls = self.url_map.bind_to_environ(environ)
        response = urls.dispatch(
            lambda endpoint, args: getattr(self, f"on_{endpoint}")(request, urls, **args),
            catch_http_exceptions=True,
        )
        return response(environ, start_response)
