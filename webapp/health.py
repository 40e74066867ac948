"""Health for load balancers and orchestrators.

``GET /healthz``: the process answers (no dependency is called: a database outage must not
make every web process look dead and get restarted). ``GET /readyz``: the database, Redis
and the broker answer within READINESS_TIMEOUT_SECONDS, all probed at once; otherwise 503,
naming what failed and why, so the balancer stops sending shoppers here meanwhile.
"""

import time
from concurrent.futures import ThreadPoolExecutor, wait

from flask import Blueprint, current_app, jsonify

from ..adapters.health import probes
from ..adapters.sql.models import db
from .context import services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    timeout = float(current_app.config["READINESS_TIMEOUT_SECONDS"])
    state = current_app.extensions.setdefault("gmall_readiness", {})
    if "probes" not in state:
        state["probes"] = probes(db.engine, services(), timeout)
        # Threads, not the request's own: a dependency that hangs costs the answer no more than the timeout.
        state["pool"] = ThreadPoolExecutor(max_workers=2 * len(state["probes"]), thread_name_prefix="readyz")
    started = time.monotonic()
    futures = {name: state["pool"].submit(_timed, probe) for name, probe in state["probes"].items()}
    wait(futures.values(), timeout=timeout)
    checks = {name: _verdict(future, timeout) for name, future in futures.items()}
    ready = all(check["ok"] for check in checks.values())
    body = {
        "status": "ready" if ready else "unready",
        "checks": checks,
        "failed": sorted(name for name, check in checks.items() if not check["ok"]),
        "ms": round(1000 * (time.monotonic() - started), 1),
    }
    return jsonify(body), 200 if ready else 503


def _timed(probe) -> float:
    started = time.monotonic()
    probe()
    return round(1000 * (time.monotonic() - started), 1)


def _verdict(future, timeout: float) -> dict:
    if not future.done():
        return {"ok": False, "error": f"no answer within {timeout:g} s"}
    error = future.exception()
    if error is not None:
        return {"ok": False, "error": f"{type(error).__name__}: {error}"[:300]}
    return {"ok": True, "ms": future.result()}
