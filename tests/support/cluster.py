"""A Redis Cluster of the test's own: three primaries and three replicas on free local ports."""

import shutil
import subprocess

import redis
from redis.cluster import RedisCluster

from .mariadb import unavailable
from .services import PrivateRedis, free_ports, wait_until


class PrivateRedisCluster:
    """``redis-server --cluster-enabled yes`` six times, joined by ``redis-cli --cluster create``.

    A primary silent for ``node_timeout_ms`` is failed over to its replica by the others."""

    def __init__(self, directory, node_timeout_ms: int = 2000):
        self.nodes = []
        ports = free_ports(12)  # six clients' ports and six buses', all distinct
        for index in range(6):
            path = directory / f"node-{index}"
            path.mkdir(parents=True, exist_ok=True)
            options = (
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(node_timeout_ms),
                "--cluster-port", str(ports[6 + index]),  # the bus, else port + 10000, maybe taken
            )  # fmt: skip
            self.nodes.append(PrivateRedis(path, *options, port=ports[index]))

    @property
    def url(self) -> str:
        """The REDIS_URL of the cluster, as the shop reads it."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in self.nodes[:3])

    def start(self):
        if shutil.which("redis-cli") is None:
            unavailable("redis-cli is not installed (Debian: apt-get install redis-tools)")
        for node in self.nodes:
            node.start()
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{node.port}" for node in self.nodes)]
            + ["--cluster-replicas", "1", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        wait_until(self._ready, 60, "the cluster never became ready")

    def _ready(self) -> bool:
        for node in self.nodes:
            client = redis.Redis(port=node.port, decode_responses=True)
            if client.cluster("info").get("cluster_state") != "ok":
                return False
            replication = client.info("replication")
            if replication["role"] == "slave" and replication["master_link_status"] != "up":
                return False
        return True

    def client(self) -> RedisCluster:
        return RedisCluster(host="127.0.0.1", port=self.nodes[0].port, decode_responses=True)

    def primary_of(self, key: str) -> PrivateRedis:
        """The node serving ``key``'s slot now."""
        client = self.client()
        try:
            port = client.get_node_from_key(key).port
        finally:
            client.close()
        return next(node for node in self.nodes if node.port == port)

    def kill_primary_of(self, key: str) -> PrivateRedis:
        """SIGKILL the primary of ``key``'s slot; return once another node serves the slot."""
        primary = self.primary_of(key)
        primary.process.kill()
        primary.process.wait(10)
        survivor = next(node for node in self.nodes if node is not primary)
        slot = redis.Redis(port=survivor.port).cluster("keyslot", key)

        def served_elsewhere():
            for first, last, owner, *_ in redis.Redis(port=survivor.port, decode_responses=True).cluster(
                "slots"
            ):
                if first <= slot <= last:
                    return int(owner[1]) != primary.port
            return False

        wait_until(served_elsewhere, 60, f"no replica took over slot {slot}")
        return primary

    def stop(self):
        for node in self.nodes:
            node.stop()


if __name__ == "__main__":  # a throw-away cluster for the benchmarks: `cd tests && python -m support.cluster`
    import tempfile
    import time
    from pathlib import Path

    cluster = PrivateRedisCluster(Path(tempfile.mkdtemp(prefix="gmall-cluster-")))
    try:
        cluster.start()
        print(cluster.url, flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
