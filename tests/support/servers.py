"""Real HTTP servers on loopback for the tests: any WSGI app in a thread, and a shop stand-in."""

import contextlib
import threading

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


@contextlib.contextmanager
def serving(app):
    """Serve ``app`` on 127.0.0.1 (a free port) in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


@contextlib.contextmanager
def receiving(path: str):
    """A ``Receiver`` served on loopback; its ``url`` is ``path`` on that server."""
    receiver = Receiver()
    with serving(receiver) as base_url:
        receiver.url = f"{base_url}{path}"
        yield receiver


class Receiver:
    """The shop's notify endpoint: records each post, answers ``failure`` ``failures`` times first.

    ``failure_status`` is the HTTP status of those answers (500: a shop that crashed).
    """

    def __init__(self, failures=0, failure_status=200):
        self.failures = failures
        self.failure_status = failure_status
        self.received = []
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        request = Request(environ)
        with self._lock:
            self.received.append(request.form.to_dict())
            failing = len(self.received) <= self.failures
        response = Response("failure", status=self.failure_status) if failing else Response("success")
        return response(environ, start_response)
