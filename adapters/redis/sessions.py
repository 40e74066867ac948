"""Ended sessions, announced on Redis: a logout or a password change publishes the member on
a channel, and each web process's cache of session generations (``adapters/session_cache.py``)
listens on a subscription of its own.

The subscription is one bare connection, not redis-py's ``PubSub``: that one reconnects and
subscribes again by itself after an error, and the messages published meanwhile would be
lost unnoticed. Here any error raises and the subscription is over; its owner makes a new one.
"""

import select

import redis
from redis.cluster import RedisCluster


class SessionChannel:
    """The channel ``name`` on the client ``client``'s Redis (or Redis Cluster, which passes a
    message published on one node to the subscribers of every node)."""

    def __init__(self, client, name: str):
        self.client, self.name = client, name

    def publish(self, member_id: int) -> None:
        """Announce that the member's sessions ended (after the database says so)."""
        self.client.publish(self.name, str(member_id))

    def subscribe(self) -> "Subscription":
        """A new subscription, subscribed when this returns (redis.RedisError otherwise). On a
        cluster any node will do: its default node, else the first that answers. After a
        fail-over redis-py keeps a dead default node until a command it sends fails there,
        and it sends none of a subscription's."""
        if not isinstance(self.client, RedisCluster):
            return self._subscribed(self.client)
        default = self.client.get_default_node()
        nodes = [default, *(node for node in self.client.get_nodes() if node is not default)]
        failure = redis.ConnectionError("no node of the cluster is known")
        for node in nodes:
            if node.redis_connection is None:
                continue
            try:
                return self._subscribed(node.redis_connection)
            except (redis.ConnectionError, redis.TimeoutError) as error:
                failure = error
        raise failure

    def _subscribed(self, client: redis.Redis) -> "Subscription":
        connection = client.connection_pool.make_connection()
        connection.client_name = self.name  # so that CLIENT LIST tells it (an operator, a test)
        return Subscription(connection, self.name)


class Subscription:
    """A connection subscribed to one channel, read without waiting."""

    def __init__(self, connection, channel: str):
        self.connection = connection
        try:
            connection.connect()
            connection.send_command("SUBSCRIBE", channel)
            reply = connection.read_response()
            if reply[0] != "subscribe":
                raise ConnectionError(f"SUBSCRIBE {channel} answered {reply!r}")
            self.socket = connection._sock  # redis-py names no public accessor
        except BaseException:
            connection.disconnect()
            raise

    def received(self):
        """Each message already delivered, as a member id; None for the answer to a ``ping``.
        Raises (redis.ConnectionError) when the connection was closed."""
        # A whole reply is never left behind (this reads until there is none), so anything new
        # is on the socket: select says so without reading, at a fifth of the cost of the
        # parser's check (the click asks on every click; gevent's select does not yield at 0).
        if not select.select((self.socket,), (), (), 0)[0]:
            return
        while self.connection.can_read(timeout=0):
            reply = self.connection.read_response()  # [message, channel, data] or [pong, ""]
            yield int(reply[2]) if reply[0] == "message" else None

    def ping(self) -> None:
        """Ask for a sign of life: its answer comes as one of ``received``."""
        self.connection.send_command("PING")

    def close(self) -> None:
        self.connection.disconnect()
