"""Redis adapters: the flash sale's reservation gate (Lua scripts) and latches.

Nothing connects at import time: the composition root calls ``connect`` with its URL.
"""

import redis


def connect(url: str, **options) -> redis.Redis:
    """A client with a connection pool of its own, answering ``str``, as the adapters expect."""
    return redis.Redis.from_url(url, decode_responses=True, **options)
