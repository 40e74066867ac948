"""Flash-sale burst: clicks/s, latency, oversold, double-bought, and how long after the last
click the last order exists; against a bare "hello" endpoint and the seed's design.

Each of the three runs on gunicorn with the same settings (workers, threads) on loopback,
and is hit by the same load generator (processes × keep-alive connections, each request
signed in as one of many members): first `GET /hello` (a Flask app that answers "hello"),
then the seed's `GET /miaosha/<sku>` (benchmarks/seed_seckill.py: its semaphore and latch
on Redis, four round trips and a list push per click), then the shop's `GET /seckill/<sku>`
(the real app on MariaDB and Redis, its rate limits counting every click, `dramatiq`
workers making the orders meanwhile). It prints the figures and the ratios, and asserts
nothing about them. Everything it started is stopped, and the database and Redis keys it
made are dropped, whatever happens.

    .venv/bin/pip install -e '.[bench]' && .venv/bin/python benchmarks/seckill_burst.py --units 10000
"""

import argparse
import contextlib
import json
import multiprocessing
import os
import socket
import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import redis
from flask import Flask, jsonify, session
from harness import BIN, Harness, percentile
from sqlalchemy import func, insert, select

from gmall_payment.adapters.sql import fixtures
from gmall_payment.adapters.sql.models import Member, db
from gmall_payment.adapters.sql.seckill import SeckillOrderRow
from gmall_payment.core.seckill import Sale, SeckillOrderStatus

HERE = Path(__file__).resolve().parent
SKU = 9001
SECRET = "benchmark-only"


# The two servers to compare with, each a WSGI app gunicorn imports from this file.

def hello_app() -> Flask:
    app = Flask("hello")
    app.get("/hello")(lambda: "hello")
    return app


def seed_app() -> Flask:
    """The seed's click (``GET /miaosha/<sku>``), the member from the same signed session cookie."""
    from seed_seckill import SeedSeckill

    app = Flask("seed")
    app.secret_key = SECRET
    seed = SeedSeckill(redis.Redis.from_url(os.environ["BENCH_REDIS_URL"], decode_responses=True),
                       os.environ["BENCH_PREFIX"])

    @app.get("/miaosha/<int:sku_id>")
    def kill(sku_id):
        ok, message = seed.kill(session.get("member_id"), sku_id)
        return jsonify(ok=ok, message=message)

    return app


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", type=int, default=10_000, help="units on sale (default 10000)")
    parser.add_argument("--members", type=int, default=0, help="members clicking (default twice the units)")
    parser.add_argument("--clicks", type=int, default=0, help="clicks per run (default twice the members)")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections of the load generator")
    parser.add_argument("--load-processes", type=int, default=2, help="processes of the load generator")
    parser.add_argument("--web-workers", type=int, default=3, help="gunicorn workers (default 3)")
    parser.add_argument("--web-threads", type=int, default=4, help="gunicorn threads per worker (default 4)")
    parser.add_argument("--worker-processes", type=int, default=1, help="dramatiq processes (default 1)")
    parser.add_argument("--worker-threads", type=int, default=4, help="dramatiq threads per process (default 4)")
    parser.add_argument("--mysql-url", default=os.environ.get("GMALL_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306"))
    parser.add_argument("--redis-url", default=os.environ.get("GMALL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--timeout", type=float, default=300, help="give up waiting for orders after this many seconds")
    args = parser.parse_args()
    args.members = args.members or 2 * args.units
    args.clicks = args.clicks or 2 * args.members

    with Bench(args) as bench:
        print(f"gunicorn {args.web_workers} workers × {args.web_threads} threads (gthread); load: "
              f"{args.load_processes} processes × {args.connections // args.load_processes} keep-alive connections; "
              f"{args.clicks} requests per run from {args.members} members; {os.cpu_count()} CPUs")
        hello = bench.run_hello()
        seed = bench.run_seed()
        shop = bench.run_shop()
    print(f"\nclicks/s: shop {shop['rate']:.0f}, hello {hello['rate']:.0f}, seed {seed['rate']:.0f}; "
          f"shop/hello {shop['rate'] / hello['rate']:.2f} (target >= 0.5), "
          f"shop/seed {shop['rate'] / seed['rate']:.2f} (target >= 2)")
    print(f"last order {shop['last_order']:.2f} s after the last click (target <= 10 s for 10,000 units)")


class Bench(Harness):
    def __init__(self, args):
        self.args = args
        # Every click counts against both limits, which stay far above what the load sends.
        super().__init__(args.mysql_url, args.redis_url, SECRET_KEY=SECRET, SECKILL_TICK_SECONDS=0.2,
                         SECKILL_RATE_LIMIT_MEMBER="1000/second", SECKILL_RATE_LIMIT_IP="1000000/second")
        self.extra_env = {"BENCH_REDIS_URL": args.redis_url, "BENCH_PREFIX": f"{self.namespace}:seed:",
                          "PYTHONPATH": str(HERE)}

    def __enter__(self):
        super().__enter__()
        with self.app.app_context():
            db.session.execute(insert(Member.__table__), [{"id": m, "username": f"b{m}", "password_hash": "x"}
                                                          for m in range(1, self.args.members + 1)])
            db.session.commit()
            fixtures.add_sku(SKU, "秒杀 SKU", 10 * self.args.units, Decimal("99.00"))
        serializer = self.app.session_interface.get_signing_serializer(self.app)
        self.cookies = [serializer.dumps({"member_id": m}) for m in range(1, self.args.members + 1)]
        return self

    def _gunicorn(self, app, probe):
        self.start("web", [str(BIN / "gunicorn"), "-k", "gthread", "-w", str(self.args.web_workers), "--threads",
                            str(self.args.web_threads), "-b", f"127.0.0.1:{self.port}", "--log-level", "warning",
                            "--keep-alive", "30", "--backlog", "2048", app])
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError):
                status, _ = _one_request(self.port, probe, "")
                if status < 500:
                    return
            if time.monotonic() > deadline or self.exited():
                raise SystemExit(f"{app} did not start:\n{self.logs()}")
            time.sleep(0.2)

    # runs

    def run_hello(self):
        self._gunicorn("seckill_burst:hello_app()", "/hello")
        try:
            return self._report("hello", self._fire("/hello"))
        finally:
            self.stop_processes()

    def run_seed(self):
        client = redis.Redis.from_url(self.args.redis_url, decode_responses=True)
        seed_prefix = f"{self.namespace}:seed:"
        client.set(f"{seed_prefix}sec:stock:{SKU}", self.args.units)  # the seed's preheat: the stock only
        self._gunicorn("seckill_burst:seed_app()", f"/miaosha/{SKU + 1}")
        try:
            answers = self._fire(f"/miaosha/{SKU}")
        finally:
            self.stop_processes()
        queued = [json.loads(m) for m in client.lrange(f"{seed_prefix}ORDER-EXCHANGE:sec.kill", 0, -1)]
        client.close()
        per_member = Counter(m["userId"] for m in queued)
        return self._report("seed design", answers, oversold=max(0, len(queued) - self.args.units),
                            double=sum(n - 1 for n in per_member.values() if n > 1))

    def run_shop(self):
        now = datetime.now()
        with self.app.app_context():
            self.app.extensions["gmall"].seckill.create_sale(
                Sale(SKU, "秒杀 ¥9.90", Decimal("9.90"), self.args.units, now, now + timedelta(hours=2)))
        self.start("worker", [str(BIN / "dramatiq"), "gmall_payment.webapp.worker", "-p",
                               str(self.args.worker_processes), "-t", str(self.args.worker_threads)])
        self._gunicorn("gmall_payment.webapp:create_app()", "/login")
        gate = self.app.extensions["gmall"].seckill.gate
        deadline = time.monotonic() + 30
        while gate.units_left(SKU) != self.args.units:
            if time.monotonic() > deadline:
                raise SystemExit(f"the worker did not preheat the sale:\n{self.logs()}")
            time.sleep(0.1)
        try:
            answers = self._fire(f"/seckill/{SKU}")
            last_click = time.monotonic()
            reserved = [(member, body["order_sn"]) for member, _, _, body in answers if body.get("outcome") == "reserved"]
            made = self._wait_for_orders(len(reserved))
            last_order = time.monotonic() - last_click
        finally:
            self.stop_processes()
        with self.app.app_context():
            rows = db.session.execute(select(SeckillOrderRow.member_id, func.count()).where(
                SeckillOrderRow.status == int(SeckillOrderStatus.CREATED)).group_by(SeckillOrderRow.member_id)).all()
        by_member = Counter(member for member, _ in reserved)
        report = self._report(
            "shop", answers, oversold=max(0, len(reserved) - self.args.units, made - self.args.units),
            double=sum(n - 1 for n in by_member.values() if n > 1) + sum(n - 1 for _, n in rows if n > 1),
            extra=f"  units left in Redis      {gate.units_left(SKU)}; orders made {made} of {len(reserved)} reserved",
        )
        print(f"  last order exists        {last_order:.2f} s after the last click")
        return {**report, "last_order": last_order}

    def _wait_for_orders(self, count) -> int:
        started = time.monotonic()
        while True:
            with self.app.app_context():
                made = db.session.scalar(select(func.count()).select_from(SeckillOrderRow).where(
                    SeckillOrderRow.status == int(SeckillOrderStatus.CREATED)))
                db.session.rollback()
            if made >= count:
                return made
            if time.monotonic() - started > self.args.timeout:
                raise SystemExit(f"only {made} of {count} orders after {self.args.timeout:g}s:\n{self.logs()}")
            time.sleep(0.05)

    def _fire(self, path):
        """Warm up, then send ``clicks`` requests, member after member, from the load generator."""
        members = [1 + n % self.args.members for n in range(self.args.clicks)]
        processes = self.args.load_processes
        jobs = [(self.port, path, [(m, self.cookies[m - 1]) for m in members[p::processes]],
                 self.args.connections // processes) for p in range(processes)]
        _load((self.port, "/hello" if "hello" in path else path.replace(str(SKU), str(SKU + 1)),
               [(m, self.cookies[m - 1]) for m in range(1, 201)], 4))  # warm-up, on no sale
        started = time.monotonic()
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            results = pool.map(_load, jobs)
        self.elapsed = time.monotonic() - started
        return [answer for result in results for answer in result]

    def _report(self, title, answers, oversold=None, double=None, extra=None):
        latencies = sorted(seconds * 1000 for _, _, seconds, _ in answers)
        statuses = Counter(status for _, status, _, _ in answers)
        rate = len(answers) / self.elapsed
        print(f"\n{title}: {len(answers)} requests in {self.elapsed:.2f} s; statuses {dict(sorted(statuses.items()))}")
        print(f"  requests/s               {rate:8.0f}")
        print(f"  latency ms               p50 {percentile(latencies, 50):6.1f}   p99 {percentile(latencies, 99):6.1f}")
        if oversold is not None:
            print(f"  oversold                 {oversold}")
            print(f"  double-bought            {double}")
        if extra:
            print(extra)
        return {"rate": rate}


def _load(job):
    """One load-generator process: ``connections`` threads, each on one keep-alive connection,
    sending its share of ``clicks``; [(member, status, seconds, json body or {})]."""
    port, path, clicks, connections = job
    answers = []
    lock = threading.Lock()
    shares = [clicks[n::connections] for n in range(connections)]

    def connection(share):
        sock = socket.create_connection(("127.0.0.1", port))
        reader = sock.makefile("rb")
        mine = []
        for member, cookie in share:
            request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n"
                       f"Cookie: session={cookie}\r\n\r\n").encode()
            begun = time.perf_counter()
            sock.sendall(request)
            status, body = _read_response(reader)
            mine.append((member, status, time.perf_counter() - begun, body))
        sock.close()
        with lock:
            answers.extend(mine)

    threads = [threading.Thread(target=connection, args=(share,)) for share in shares]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [(member, status, seconds, json.loads(body) if body.startswith(b"{") else {})
            for member, status, seconds, body in answers]


def _read_response(reader):
    status = int(reader.readline().split()[1])
    length = 0
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, reader.read(length)


def _one_request(port, path, cookie):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: session={cookie}\r\n\r\n".encode())
        return _read_response(sock.makefile("rb"))


if __name__ == "__main__":
    main()
