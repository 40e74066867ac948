"""Hosts of a test's own: Linux network namespaces on one bridge, each with its own address.

``Network()`` claims a free private subnet 10.213.<n>.0/24 by creating the namespace
``gm<n>-switch`` (creating a namespace that exists fails, so two runs never share ``n``); the
switch holds the bridge, every host is a namespace ``gm<n>-<host>`` whose ``eth0`` is a veth
plugged into it, and the test process gets a leg of its own (``gm<n>-test``, address .254) to
arrange and observe. Nothing but that leg touches the machine's own network. ``destroy()``
kills every process left in the namespaces and deletes them, whatever happened before.
Needs root and ``ip`` (iproute2).
"""

import contextlib
import os
import random
import shutil
import signal
import subprocess

from .mariadb import unavailable

PREFIX = "10.213"
TEST_ADDRESS_SUFFIX = 254
PACKAGES = {"ip": "iproute2"}  # Debian's package of each program, where its name differs


def ip(*args: str) -> str:
    """Run ``ip args``; fail with its error output."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if done.returncode:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def require_namespaces(*programs: str) -> None:
    """Skip (fail when services are required) without root, ``ip`` or ``programs``."""
    if os.geteuid() != 0:
        unavailable("network namespaces need root")
    for program in ("ip", *programs):
        if shutil.which(program) is None:
            package = PACKAGES.get(program, program)
            unavailable(f"{program} is not installed (Debian: apt-get install -y {package})")


class Host:
    """One namespace on the network: ``launcher`` runs a command inside it."""

    def __init__(self, network: "Network", name: str, address: str):
        self.network = network
        self.name = name
        self.namespace = f"{network.tag}-{name}"
        self.address = address
        self.addresses = [address]

    @property
    def launcher(self) -> list[str]:
        return ["ip", "netns", "exec", self.namespace]

    def add_address(self, address: str) -> None:
        """One more address on ``eth0`` (a client host with several shoppers' addresses)."""
        ip("-n", self.namespace, "addr", "add", f"{address}/24", "dev", "eth0")
        self.addresses.append(address)

    def cut_off(self) -> None:
        """Take the host's link down: its peers' packets go nowhere, nothing is closed."""
        ip("-n", self.namespace, "link", "set", "dev", "eth0", "down")

    def kill_everything(self) -> None:
        for pid in ip("netns", "pids", self.namespace).split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)


class Network:
    """Hosts on one bridge in 10.213.<n>.0/24 (a subnet no other run holds)."""

    def __init__(self):
        self.subnet = self._claim_subnet()
        self.tag = f"gm{self.subnet}"
        self.switch = f"{self.tag}-switch"
        self.hosts: list[Host] = []
        self.test_address = self.address(TEST_ADDRESS_SUFFIX)
        try:
            ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
            ip("-n", self.switch, "link", "set", "dev", "br0", "up")
            self._plug(f"{self.tag}-test", None, self.test_address)
        except BaseException:
            self.destroy()
            raise

    def address(self, suffix: int) -> str:
        return f"{PREFIX}.{self.subnet}.{suffix}"

    @staticmethod
    def _claim_subnet() -> int:
        routed = ip("-4", "route", "show")
        for subnet in random.sample(range(256), 256):
            if f"{PREFIX}.{subnet}." in routed:
                continue
            with contextlib.suppress(RuntimeError):  # another run holds it
                ip("netns", "add", f"gm{subnet}-switch")
                return subnet
        raise RuntimeError(f"no free subnet {PREFIX}.<n>.0/24")

    def host(self, name: str, suffix: int) -> Host:
        """A new namespace ``name`` with address .``suffix`` on the bridge, loopback up."""
        host = Host(self, name, self.address(suffix))
        ip("netns", "add", host.namespace)
        self.hosts.append(host)
        ip("-n", host.namespace, "link", "set", "dev", "lo", "up")
        self._plug(name, host.namespace, host.address)
        return host

    def _plug(self, port: str, namespace: str | None, address: str) -> None:
        """A veth from the bridge's ``port`` to ``eth0`` of ``namespace`` (None: the test's own,
        named ``port`` in the machine's namespace), with ``address``."""
        inside = "eth0" if namespace else port
        peer = ["peer", "name", inside, "netns", namespace or str(os.getpid())]
        ip("-n", self.switch, "link", "add", "name", port, "type", "veth", *peer)
        ip("-n", self.switch, "link", "set", "dev", port, "master", "br0", "up")
        where = ["-n", namespace] if namespace else []
        ip(*where, "addr", "add", f"{address}/24", "dev", inside)
        ip(*where, "link", "set", "dev", inside, "up")

    def destroy(self) -> None:
        """Kill every process in the hosts, delete them and the switch (the test's leg with it)."""
        for host in self.hosts:
            with contextlib.suppress(RuntimeError):
                host.kill_everything()
        for namespace in [host.namespace for host in self.hosts] + [self.switch]:
            with contextlib.suppress(RuntimeError):
                ip("netns", "del", namespace)
