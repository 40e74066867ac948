"""Redis adapters: the flash sale's reservation gate (Lua scripts) and latches.

Nothing connects at import time: the composition root calls ``connect`` with its URL.
"""

from urllib.parse import unquote, urlsplit

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import ClusterDownError, RedisClusterException, TryAgainError

#: A Redis Cluster's URL, as the limits library (the rate limits) writes it too:
#: ``redis+cluster://[:password@]host:port[,host:port...]``.
CLUSTER_SCHEME = "redis+cluster"


#: What Redis, or a Redis Cluster in a failover, raises when it did not answer (in time): a
#: request answers 503, try again.
UNANSWERED = (
    redis.ConnectionError,
    redis.TimeoutError,
    ClusterDownError,
    TryAgainError,
    RedisClusterException,
)


def is_cluster(url: str) -> bool:
    return urlsplit(url).scheme == CLUSTER_SCHEME


def connect(url: str, **options) -> redis.Redis | RedisCluster:
    """A client with connections of its own, answering ``str``, as the adapters expect: a
    RedisCluster for a ``redis+cluster://`` URL (it reads the slot map when made, so it needs
    a node answering then), else a Redis."""
    if not is_cluster(url):
        return redis.Redis.from_url(url, decode_responses=True, **options)
    credentials, _, hosts = urlsplit(url).netloc.rpartition("@")
    password = unquote(credentials.partition(":")[2]) or None
    nodes = []
    for host in filter(None, hosts.split(",")):
        name, _, port = host.rpartition(":")
        if not name or not port.isdigit():
            raise ValueError(f"REDIS_URL: {host!r} of {url!r} is not host:port")
        nodes.append(ClusterNode(name, int(port)))
    if not nodes:
        raise ValueError(f"REDIS_URL: {url!r} names no node")
    return RedisCluster(startup_nodes=nodes, password=password, decode_responses=True, **options)
