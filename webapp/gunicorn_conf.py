"""gunicorn's hooks for the shop's metrics with several workers:
``gunicorn -c python:gmall_payment.webapp.gunicorn_conf ... 'gmall_payment.webapp:create_app()'``.

Each worker writes its counters into PROMETHEUS_MULTIPROC_DIR, which must be set (to a
directory of its own) before gunicorn starts: prometheus-client reads it once, at import.
The master empties it at start (values of a previous run would be summed in) and marks each
worker that exits as dead (``prometheus_client.multiprocess.mark_process_dead``).
"""

import os
from pathlib import Path

from prometheus_client import multiprocess


def on_starting(server):
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        if server.cfg.workers > 1:
            server.log.warning(
                "PROMETHEUS_MULTIPROC_DIR is not set: each scrape of /metrics counts one worker only"
            )
        return
    Path(directory).mkdir(parents=True, exist_ok=True)
    for stale in Path(directory).glob("*.db"):
        stale.unlink()


def post_worker_init(worker):
    """Open the click's connections before the worker's first request, as many as it serves at
    once (gevent: ``--worker-connections``, at most ``CLICK_CONNECTIONS``; threads: ``--threads``),
    so that a burst opens none (opening one costs a click a connect and its round trips)."""
    click_path = getattr(worker.wsgi, "extensions", {}).get("click_path")
    if click_path is not None:
        click_path.open_connections(at_once(worker.cfg))


#: The most connections opened ahead per worker (gevent's --worker-connections defaults to 1,000).
CLICK_CONNECTIONS = 256


def at_once(cfg) -> int:
    """How many requests a worker with gunicorn's settings ``cfg`` serves at once."""
    if any(name in cfg.worker_class_str for name in ("gevent", "eventlet")):  # a greenlet per connection
        return min(cfg.worker_connections, CLICK_CONNECTIONS)
    return max(1, cfg.threads)


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
