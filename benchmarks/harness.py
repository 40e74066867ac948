"""What the benchmarks share: a fresh MariaDB database and Redis namespace, the shop's
settings for them, processes started in sessions of their own, and cleaning all that up
whatever happens."""

import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from gmall_payment.adapters.redis import connect
from gmall_payment.adapters.sql.models import db
from gmall_payment.webapp import create_app

BIN = Path(sys.executable).parent
HERE = Path(__file__).resolve().parent
#: The servers a run uses beside the processes it starts, whose CPU it counts too (by name).
SERVERS = ("mariadbd", "redis-server")


class Harness:
    """``with Harness(mysql_url, redis_url, **settings) as h``: ``h.app`` is the shop on a
    database of its own (tables made) and a Redis namespace of its own; ``h.start(name,
    command)`` runs a process with the shop's settings in its environment."""

    def __init__(self, mysql_url: str, redis_url: str, **settings):
        self.redis_url = redis_url
        self.folder = Path(tempfile.mkdtemp(prefix="gmall-bench-"))
        self.server = create_engine(mysql_url, isolation_level="AUTOCOMMIT")
        self.database = f"gmall_bench_{uuid.uuid4().hex[:10]}"
        self.namespace = f"gmall-bench-{uuid.uuid4().hex[:10]}"
        self.port = free_port()
        self.processes, self.names = [], []
        self.settings = {
            "INSTANCE_PATH": str(self.folder / "instance"),
            "DATABASE_URL": make_url(mysql_url)
            .set(database=self.database)
            .render_as_string(hide_password=False),
            "REDIS_URL": redis_url,
            "REDIS_NAMESPACE": self.namespace,
            "SECRET_KEY": "benchmark-only",
            "PROVIDERS": "mockpay",
            **settings,
        }
        #: More of the processes' environment; PYTHONPATH: where the benchmarks' own modules are
        #: (before whatever PYTHONPATH the benchmark itself was given).
        self.extra_env = {
            "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
        }

    def __enter__(self):
        with self.server.connect() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE `{self.database}` CHARACTER SET utf8mb4")
        self.app = create_app(dict(self.settings))
        with self.app.app_context():
            db.create_all()
        return self

    def __exit__(self, *exc_info):
        self.stop_processes()
        with self.app.app_context():
            db.engine.dispose()
        with self.server.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE `{self.database}`")
        self.server.dispose()
        for url in dict.fromkeys((self.redis_url, self.settings["REDIS_URL"])):  # the gate's may be a cluster
            client = connect(url)
            for pattern in (f"{self.namespace}:*", f"LIMITER/{self.namespace}/*"):
                for key in client.scan_iter(pattern):
                    client.delete(key)
            client.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def start(self, name: str, command: list[str], **settings) -> None:
        """Run ``command`` with the shop's settings (those given here instead, for it alone)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("GMALL_")}
        env.update({f"GMALL_{key}": str(value) for key, value in {**self.settings, **settings}.items()})
        env.update(self.extra_env)
        log = (self.folder / f"{name}.log").open("w")
        self.names.append(name)
        self.processes.append(
            subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        )

    def start_workers(self, processes: int, threads: int, driver: str = "") -> None:
        """The shop's ``dramatiq`` workers, with the shop's settings (its MySQL ``driver`` instead,
        e.g. ``mysqldb``, if given), once each of their processes is ready."""
        command = [
            str(BIN / "dramatiq"),
            "gmall_payment.webapp.worker",
            "-p",
            str(processes),
            "-t",
            str(threads),
        ]
        url = make_url(self.settings["DATABASE_URL"])
        database = url.set(drivername=f"mysql+{driver}") if driver else url
        self.start("worker", command, DATABASE_URL=database.render_as_string(hide_password=False))
        log, deadline = self.folder / "worker.log", time.monotonic() + 120
        while log.read_text(errors="replace").count("is ready for action") < processes:  # else a run
            if time.monotonic() > deadline or self.exited():  # begins with seconds of backlog
                raise SystemExit(f"the workers did not start:\n{self.logs()}")
            time.sleep(0.1)

    def stop_processes(self) -> None:
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        self.processes, self.names = [], []

    def memory(self) -> str:
        """The resident memory (VmRSS) of the processes each started one runs: gunicorn's
        workers and dramatiq's worker processes, not the master or supervisor that forked them."""
        parts = []
        for name, process in zip(self.names, self.processes, strict=True):
            pids = children(process.pid) or [process.pid]
            sizes = ", ".join(f"{rss_kib(pid) / 1024:.0f}" for pid in pids)
            parts.append(f"{name} {sizes} MB")
        return "RSS: " + "; ".join(parts)

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far by each process it started (with those they forked: gunicorn's
        and dramatiq's workers) and by the servers (``SERVERS``); ``cpu_per_request`` compares two."""
        used = {
            name: sum(cpu_seconds(pid) for pid in [process.pid, *children(process.pid)])
            for name, process in zip(self.names, self.processes, strict=True)
        }
        return used | {server: sum(cpu_seconds(pid) for pid in named(server)) for server in SERVERS}

    def statements(self) -> dict[str, int]:
        """MariaDB's own counts of the statements it ran so far, by kind (server-wide: whatever
        else uses the server counts too); ``statements_per_request`` compares two."""
        with self.server.connect() as connection:
            rows = connection.exec_driver_sql(
                "SHOW GLOBAL STATUS WHERE Variable_name IN "
                "('Com_select', 'Com_insert', 'Com_update', 'Com_delete', 'Com_commit', 'Com_rollback')"
            )
            return {name.removeprefix("Com_").lower(): int(value) for name, value in rows}

    def exited(self) -> bool:
        return any(p.poll() is not None for p in self.processes)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-2000:] for p in sorted(self.folder.glob("*.log")))


def add_service_options(parser) -> None:
    """--mysql-url and --redis-url, defaulting to the test suite's servers."""
    parser.add_argument(
        "--mysql-url", default=os.environ.get("GMALL_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("GMALL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    )


def add_load_options(parser, seconds: float, who: str) -> None:
    """--rounds, --seconds, --connections and --web-class, as the benchmarks that compare servers
    hit by the same load take them; ``who`` names the servers that take turns."""
    parser.add_argument("--rounds", type=int, default=3, help=f"rounds in which {who} take turns (default 3)")
    parser.add_argument(
        "--seconds", type=float, default=seconds, help=f"how long each of {who} is hit (default {seconds:g})"
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=32,
        help="keep-alive connections of the load generator (default 32)",
    )
    parser.add_argument(
        "--web-class",
        default="gevent",
        help="gunicorn worker class (default gevent, as the README deploys the shop)",
    )


def percentile(values, percent):
    return (
        statistics.quantiles(values, n=100, method="inclusive")[percent - 1] if len(values) > 1 else values[0]
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ")"
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return sorted(found)


def named(command: str) -> list[int]:
    """The processes whose command name is ``command`` (from /proc)."""
    found = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        with contextlib.suppress(OSError):
            if comm.read_text().strip() == command:
                found.append(int(comm.parent.name))
    return found


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds ``pid`` has used (0 once it has gone)."""
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    return 0.0


def cpu_per_request(before: dict, after: dict, result: dict) -> str:
    """Each process's CPU per request between two ``Harness.cpu`` readings around a ``wrk``
    run, the load generator's own included: the cost a ratio of rates hides."""
    used = {name: after[name] - before.get(name, 0.0) for name in after} | {"wrk": result["cpu"]}
    per = {name: seconds / max(1, result["requests"]) * 1e6 for name, seconds in used.items()}
    parts = ", ".join(f"{name} {micro:.0f}" for name, micro in per.items())
    return f"CPU µs per request       {parts}; all {sum(per.values()):.0f}"


def statements_per_request(before: dict, after: dict, result: dict) -> str:
    """The statements MariaDB ran per request between two ``Harness.statements`` readings: the
    round trips a request costs (each one a send and a wake-up of the server)."""
    per = {kind: (after[kind] - before[kind]) / max(1, result["requests"]) for kind in after}
    parts = ", ".join(f"{kind} {count:.2f}" for kind, count in per.items() if count >= 0.005)
    return f"MariaDB statements per request  {parts}; all {sum(per.values()):.2f}"


def rss_kib(pid: int) -> int:
    """VmRSS of ``pid`` in KiB (0 once it has gone)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def wrk(
    url: str, script: Path, env: dict, connections: int, threads: int, seconds: float, timeout: float = 2
) -> dict:
    """Hit ``url`` for ``seconds`` with wrk running ``script`` (with ``env`` in its environment),
    which prints one line ``RESULT {json}``: that, read, with ``cpu``, the CPU seconds wrk used.
    A request unanswered after ``timeout`` seconds counts as a socket error."""
    started = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [
            "wrk",
            *("-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s"),
            *("--timeout", f"{timeout:g}s", "-s", str(script), url),
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    line = next((line for line in done.stdout.splitlines() if line.startswith("RESULT ")), None)
    if line is None or done.stderr:
        raise SystemExit(f"wrk printed no result, or errors:\n{done.stdout}\n{done.stderr}")
    ended = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = ended.ru_utime + ended.ru_stime - started.ru_utime - started.ru_stime
    return {**json.loads(line.removeprefix("RESULT ")), "cpu": cpu}
