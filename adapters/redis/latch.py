"""A latch on Redis: a list that holds one token once opened, expiring after ``ttl`` seconds."""

from ...ports.messaging import Latch


class RedisLatch(Latch):
    """``wait`` is a blocking move of the list onto itself (``BLMOVE key key``): it returns as
    soon as the token is there and leaves it for every later waiter, with a timeout, unlike
    the seed's ``latch.await()``. Each waiter holds a pooled connection while it waits."""

    def __init__(self, client, prefix: str = "", ttl: int = 3600):
        self.client = client
        self.prefix = prefix
        self.ttl = ttl

    def open(self, key):
        key = self.prefix + key
        with self.client.pipeline() as pipe:  # MULTI/EXEC: never a token without its expiry
            pipe.lpush(key, 1)
            pipe.ltrim(key, 0, 0)
            pipe.expire(key, self.ttl)
            pipe.execute()

    def wait(self, key, timeout):
        key = self.prefix + key
        if timeout <= 0:  # Redis reads a timeout of 0 as "wait forever"
            return self.client.exists(key) == 1
        return self.client.blmove(key, key, timeout, "LEFT", "LEFT") is not None
