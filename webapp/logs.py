"""Logs: plain text by default; ``LOG_FORMAT=json`` writes one JSON object per line
(python-json-logger), and every line carries what it is about: the request's id (from
``X-Request-ID`` when a trusted proxy sends one, else made here, and answered in the same
header), the Dramatiq message's id in a worker, and the order, payment and step that
``core.logfields.bound`` names.

The click's fast path (``click_path``) answers beneath Flask: its rare log lines carry no
request id.
"""

import logging
import re
import sys
import uuid

from dramatiq.middleware import CurrentMessage
from flask import Flask, g, has_request_context, request
from flask.logging import default_handler
from pythonjsonlogger.json import JsonFormatter

from ..core import logfields
from .security import trusted_proxies

FORMATS = ("text", "json")
#: What a request id from a proxy may look like (anything else is replaced by our own).
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}\Z")


class ContextFields(logging.Filter):
    """Puts the request id, the message id and the bound fields on each record it sees."""

    def filter(self, record):
        for key, value in logfields.current().items():
            record.__dict__.setdefault(key, value)
        if has_request_context() and "request_id" in g:
            record.__dict__.setdefault("request_id", g.request_id)
        message = CurrentMessage.get_current_message()
        if message is not None:
            record.__dict__.setdefault("message_id", message.message_id)
        return True


def configure(app: Flask) -> None:
    """Request ids always; JSON lines on the root logger's handler when LOG_FORMAT says so."""
    log_format = str(app.config["LOG_FORMAT"]).lower()
    if log_format not in FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, got {app.config['LOG_FORMAT']!r}")
    trusted = trusted_proxies(app.config) > 0

    @app.before_request
    def assign_request_id():
        sent = request.headers.get("X-Request-ID", "")
        g.request_id = sent if trusted and REQUEST_ID.match(sent) else uuid.uuid4().hex

    @app.after_request
    def answer_request_id(response):
        response.headers["X-Request-ID"] = g.get("request_id", "")
        return response

    if log_format == "json":
        _json_lines(app)


def _json_lines(app: Flask) -> None:
    """Format the plain stream handlers of the root logger (dramatiq's pipe in its worker
    processes, or one of ours on stderr) as JSON; Flask's own handler gives way to them."""
    root = logging.getLogger()
    handlers = [h for h in root.handlers if type(h) is logging.StreamHandler]  # not pytest's, not files
    if not handlers:
        handlers = [logging.StreamHandler(sys.stderr)]
        root.addHandler(handlers[0])
    formatter = JsonFormatter(
        "{asctime}{levelname}{name}{message}",
        style="{",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
    )
    for handler in handlers:
        handler.setFormatter(formatter)
        if not any(isinstance(f, ContextFields) for f in handler.filters):
            handler.addFilter(ContextFields())
    root.setLevel(app.config["LOG_LEVEL"])
    app.logger.removeHandler(default_handler)
