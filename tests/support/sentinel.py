"""A Redis primary, its replica and a Sentinel watching them, all of the test's own."""

import redis

from .services import PrivateRedis, wait_until


class SentinelledRedis:
    """One Sentinel (quorum 1) fails ``service`` over to the replica a second after its primary
    stops answering: the smallest setup in which a failover really happens."""

    def __init__(self, directory, service="gmall"):
        self.directory = directory
        self.service = service
        self.primary = PrivateRedis(self._dir("primary"))
        self.replica = None
        self.sentinel = None

    def _dir(self, name):
        path = self.directory / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def sentinels(self) -> str:
        """The value of BROKER_SENTINELS."""
        return f"127.0.0.1:{self.sentinel.port}"

    def start(self):
        self.primary.start()
        self.replica = PrivateRedis(self._dir("replica"), "--replicaof", "127.0.0.1", str(self.primary.port))
        self.replica.start()
        config = self._dir("sentinel") / "sentinel.conf"  # Sentinel rewrites its file: one of its own
        config.write_text(
            f"sentinel monitor {self.service} 127.0.0.1 {self.primary.port} 1\n"
            f"sentinel down-after-milliseconds {self.service} 1000\n"
            f"sentinel failover-timeout {self.service} 10000\n"
        )
        self.sentinel = PrivateRedis(config.parent, str(config), "--sentinel")
        self.sentinel.start()
        replica = redis.Redis(port=self.replica.port, decode_responses=True)
        sentinel = redis.Redis(port=self.sentinel.port, decode_responses=True)
        wait_until(
            lambda: (
                replica.info("replication")["master_link_status"] == "up"
                and sentinel.sentinel_slaves(self.service)
            ),
            30,
            "the replica never synced, or the sentinel never found it",
        )

    def primary_port(self) -> int:
        client = redis.Redis(port=self.sentinel.port, decode_responses=True)
        return int(client.sentinel_get_master_addr_by_name(self.service)[1])

    def kill_primary(self):
        """SIGKILL the primary (what it had not replicated is lost) and wait for the failover."""
        self.primary.process.kill()
        self.primary.process.wait(10)
        wait_until(lambda: self.primary_port() == self.replica.port, 60, "the sentinel did not fail over")

    def stop(self):
        for server in (self.sentinel, self.replica, self.primary):
            if server is not None:
                server.stop()
