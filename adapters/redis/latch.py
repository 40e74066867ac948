"""A latch on Redis: a list that holds one token once opened, expiring after ``ttl`` seconds."""

from redis.cluster import RedisCluster

from ...ports.messaging import Latch

#: KEYS latch; ARGV ttl. One token, never without its expiry.
OPEN = """
redis.call('LPUSH', KEYS[1], 1)
redis.call('LTRIM', KEYS[1], 0, 0)
return redis.call('EXPIRE', KEYS[1], ARGV[1])
"""


class RedisLatch(Latch):
    """``wait`` is a blocking move of the list onto itself (``BLMOVE key key``): it returns as
    soon as the token is there and leaves it for every later waiter, with a timeout, unlike
    the seed's ``latch.await()``. Each waiter holds a pooled connection while it waits."""

    def __init__(self, client, prefix: str = "", ttl: int = 3600):
        self.client = client
        self.prefix = prefix
        self.ttl = ttl
        self._open = client.register_script(OPEN)

    def open(self, *keys):
        if isinstance(self.client, RedisCluster):  # keys on several slots: one call each
            for key in keys:
                self._open(keys=[self.prefix + key], args=[self.ttl])
            return
        with self.client.pipeline(transaction=False) as pipeline:
            for key in keys:
                self._open(keys=[self.prefix + key], args=[self.ttl], client=pipeline)
            pipeline.execute()

    def wait(self, key, timeout):
        key = self.prefix + key
        if timeout <= 0:  # Redis reads a timeout of 0 as "wait forever"
            return self.client.exists(key) == 1
        return self.client.blmove(key, key, timeout, "LEFT", "LEFT") is not None
