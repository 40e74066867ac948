"""``gmall-payment status``: is the background work being done? Workers alive, what waits in
each queue, what is dead-lettered, what the outbox has not sent yet."""

import json
import sys

import click
import redis
from flask import current_app
from flask.cli import with_appcontext

from ..adapters.dramatiq.monitor import queue_depths
from ..adapters.sql import queries

#: Exit codes: no worker alive (on Redis), Redis unreachable (dramatiq's own code for it).
EXIT_NO_WORKER, EXIT_REDIS_UNREACHABLE = 1, 3


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="one JSON object instead of lines")
@with_appcontext
def status(as_json):
    """Workers alive, queue depths, dead letters waiting, the oldest unsent outbox event.

    Exits 1 when no worker is alive on Redis, 3 when Redis does not answer.
    """
    services = current_app.extensions["gmall"]
    report = {"outbox": queries.outbox_backlog()}
    if services.heartbeat is None:
        report["workers"] = "in-process (the embedded default: the worker runs inside the shop)"
    else:
        try:
            report["workers"] = services.heartbeat.alive()
            queues = {q for q in services.broker.get_declared_queues() if not q.endswith((".DQ", ".XQ"))}
            report["queues"] = queue_depths(
                services.heartbeat.client, services.broker_settings.namespace, queues
            )
        except redis.RedisError as error:
            click.echo(f"Redis ({services.broker_settings.redis_url}) does not answer: {error}", err=True)
            sys.exit(EXIT_REDIS_UNREACHABLE)
    click.echo(json.dumps(report, indent=2) if as_json else _lines(report))
    if isinstance(report["workers"], dict) and not report["workers"]:
        sys.exit(EXIT_NO_WORKER)


def _lines(report: dict) -> str:
    workers = report["workers"]
    if isinstance(workers, dict):
        beats = ", ".join(f"{worker} ({age:g} s ago)" for worker, age in sorted(workers.items()))
        lines = [
            f"workers: {len(workers)} alive"
            + (f": {beats}" if beats else " - start them: gmall-payment worker")
        ]
    else:
        lines = [f"workers: {workers}"]
    for name, depth in sorted(report.get("queues", {}).items()):
        lines.append(
            f"queue {name}: {depth['waiting']} waiting, {depth['delayed']} delayed, "
            f"{depth['dead']} dead-lettered"
        )
    outbox = report["outbox"]
    lines.append(
        f"outbox: {outbox['unsent']} unsent"
        + (f", oldest written {outbox['oldest_unsent']}" if outbox["oldest_unsent"] else "")
    )
    return "\n".join(lines)
