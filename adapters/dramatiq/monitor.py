"""What operators ask of the workers on Redis: which are alive, how much waits in each queue,
how much is dead-lettered (``gmall-payment status``).

Dramatiq's own ``__heartbeats__`` cannot say it: every process that calls the broker, a web
process enqueuing a message included, beats there. So each worker process beats into a
sorted set of ours from its periodic jobs; one silent for ``STALE_AFTER`` intervals is dead.
"""

import os
import socket
import time

import redis

#: A worker whose last beat is older than this many intervals is reported dead.
STALE_AFTER = 3


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Heartbeat:
    """One worker process's beat, and every worker's last beat, under ``<namespace>:workers``."""

    def __init__(self, client: redis.Redis, namespace: str, interval: float):
        self.client = client
        self.key = f"{namespace}:workers"
        self.interval = interval

    def beat(self) -> None:
        now = time.time()
        with self.client.pipeline(transaction=False) as pipe:
            pipe.zadd(self.key, {worker_id(): now})
            pipe.zremrangebyscore(self.key, 0, now - 10 * STALE_AFTER * self.interval)  # long gone
            pipe.execute()

    def alive(self) -> dict[str, float]:
        """Each live worker and the seconds since its last beat."""
        now = time.time()
        beats = self.client.zrangebyscore(
            self.key, now - STALE_AFTER * self.interval, "+inf", withscores=True
        )
        return {_text(worker): round(now - at, 1) for worker, at in beats}


def queue_depths(client: redis.Redis, namespace: str, queues) -> dict[str, dict[str, int]]:
    """Per queue: messages waiting for a worker, delayed (retries, scheduled expiries) and
    dead-lettered, read from the Redis broker's own keys (dramatiq/brokers/redis/dispatch.lua)."""
    names = sorted(queues)
    with client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.llen(f"{namespace}:{name}")
            pipe.hlen(f"{namespace}:{name}.DQ.msgs")
            pipe.zcard(f"{namespace}:{name}.XQ")
        counts = pipe.execute()
    return {
        name: dict(zip(("waiting", "delayed", "dead"), counts[3 * i : 3 * i + 3], strict=True))
        for i, name in enumerate(names)
    }


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value
