"""Flash-sale burst: clicks/s, latency, oversold, double-bought, and how long after the last
click the last order exists; against a bare "hello" endpoint and the seed's design.

Each of the three runs on gunicorn with the same settings (worker class, workers, threads)
on loopback, and is hit for the same time by the same load generator (wrk, its connections
kept alive, each request signed in as one of many members at random; benchmarks/clicks.lua):
first `GET /hello` (a Flask app that answers "hello"), then the seed's `GET /miaosha/<sku>`
(benchmarks/seed_seckill.py: its semaphore and latch on Redis, four round trips and a list
push per click; its listeners making an order per message meanwhile, as many as the shop's
worker threads), then the shop's `GET /seckill/<sku>` (the real app on MariaDB and Redis, its
rate limits counting every click, `dramatiq` workers making the orders meanwhile). Both
designs sell the units on the same SKU and database; for each, the time from the last click
to its last order. ``--metrics both`` runs the shop twice a round, its metrics off and on (on:
every gunicorn worker writes into a PROMETHEUS_MULTIPROC_DIR, and /metrics is scraped after the
load), and prints the ratio of the two; ``--only-shop`` leaves the hello and seed runs out. The
three take turns for ``--rounds`` rounds (a new sale on a new SKU each
round), so that a slow spell of a shared machine falls on all of them alike. It prints each
run's figures, each round's ratios and their medians, and asserts nothing about them.
Everything it started is stopped, and the database and Redis keys it made are dropped,
whatever happens.

    apt-get install wrk   # Debian/Ubuntu; `brew install wrk` on macOS
    .venv/bin/pip install -e '.[bench]' && .venv/bin/python benchmarks/seckill_burst.py --units 10000
    .venv/bin/python benchmarks/seckill_burst.py --units 2000 --seconds 5 --rounds 2 --metrics both --only-shop

``--redis-cluster URL`` puts the shop's gate, latches and rate limits on a Redis Cluster (the
broker and the seed's design stay on ``--redis-url``). A throw-away local one, six nodes:

    (cd tests && ../.venv/bin/python -m support.cluster)   # prints its URL; Ctrl-C stops it
    .venv/bin/python benchmarks/seckill_burst.py --only-shop --redis-cluster redis+cluster://127.0.0.1:PORT,...
"""

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import redis
from flask import Flask, jsonify, session
from harness import BIN, Harness, add_load_options, add_service_options, cpu_per_request, free_port, wrk
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import delete, func, insert, select, update

from gmall_payment.adapters.sql import fixtures
from gmall_payment.adapters.sql.models import Member, db
from gmall_payment.adapters.sql.seckill import SeckillOrderRow
from gmall_payment.adapters.sql.store import oms_order, oms_order_item, wms_stock_lock, wms_ware_sku
from gmall_payment.core.seckill import Sale, SeckillOrderStatus
from gmall_payment.webapp.context import EPOCH, MEMBER

HERE = Path(__file__).resolve().parent
NOT_ON_SALE = 9000  # the warm-up's clicks
SECRET = "benchmark-only"
PRICE = Decimal("9.90")


def sku(number: int) -> int:
    """The SKU on sale in round ``number``."""
    return 9001 + number


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
    seed = SeedSeckill(
        redis.Redis.from_url(os.environ["BENCH_REDIS_URL"], decode_responses=True), os.environ["BENCH_PREFIX"]
    )

    @app.get("/miaosha/<int:sku_id>")
    def kill(sku_id):
        ok, message = seed.kill(session.get("member_id"), sku_id)
        return jsonify(ok=ok, message=message)

    return app


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", type=int, default=10_000, help="units on sale (default 10000)")
    parser.add_argument("--members", type=int, default=0, help="members clicking (default twice the units)")
    add_load_options(parser, 10, "the three")
    parser.add_argument(
        "--load-threads", type=int, default=2, help="threads of the load generator (default 2)"
    )
    parser.add_argument("--web-workers", type=int, default=3, help="gunicorn workers (default 3)")
    parser.add_argument(
        "--web-threads", type=int, default=4, help="gunicorn threads per gthread worker (default 4)"
    )
    parser.add_argument("--worker-processes", type=int, default=1, help="dramatiq processes (default 1)")
    parser.add_argument(
        "--worker-threads", type=int, default=4, help="dramatiq threads per process (default 4)"
    )
    parser.add_argument(
        "--metrics",
        choices=("on", "off", "both"),
        default="on",
        help="the shop's METRICS: on (the default), off, or both in each round (and their ratio)",
    )
    parser.add_argument("--only-shop", action="store_true", help="run the shop only (no hello, no seed)")
    parser.add_argument(
        "--redis-cluster",
        default="",
        help="the shop's gate on this Redis Cluster (redis+cluster://host:port,...); the broker on --redis-url",
    )
    add_service_options(parser)
    parser.add_argument(
        "--timeout", type=float, default=300, help="give up waiting for orders after this many seconds"
    )
    args = parser.parse_args()
    args.members = args.members or 2 * args.units
    if not shutil.which("wrk"):
        raise SystemExit("the load generator is wrk: install it (apt-get install wrk, or brew install wrk)")

    with Bench(args) as bench:
        each = f"{args.web_threads} threads" if args.web_class == "gthread" else f"{bench.share} connections"
        print(
            f"gunicorn {args.web_workers} workers × {each} ({args.web_class}); load: wrk, "
            f"{args.load_threads} threads × {args.connections // args.load_threads} keep-alive connections, "
            f"{args.seconds:g} s per run, {args.members} members; {os.cpu_count()} CPUs"
        )
        rounds = []
        for number in range(args.rounds):
            print(f"\n## round {number + 1} of {args.rounds}")
            runs = (
                {}
                if args.only_shop
                else {
                    "hello": bench.run_hello(),
                    "seed alone": bench.run_seed(number, listeners=False),
                    "seed": bench.run_seed(number, listeners=True),
                }
            )
            modes = {
                "on": [True],
                "off": [False],
                "both": [False, True] if number % 2 == 0 else [True, False],
            }
            for second, metrics in enumerate(modes[args.metrics]):  # both: which goes first alternates
                runs["shop" if metrics or args.metrics == "off" else "shop, metrics off"] = bench.run_shop(
                    number + second * args.rounds, metrics
                )
            rounds.append(runs)
    if args.metrics == "both":
        print("\n## metrics on against off (clicks/s of the shop in the same round)")
        for number, runs in enumerate(rounds, 1):
            print(
                f"round {number}: metrics on {runs['shop']['rate']:.0f}, off {runs['shop, metrics off']['rate']:.0f}; "
                f"on/off {runs['shop']['rate'] / runs['shop, metrics off']['rate']:.3f}"
            )
        median = statistics.median(
            runs["shop"]["rate"] / runs["shop, metrics off"]["rate"] for runs in rounds
        )
        print(f"median metrics on/off: {median:.3f} (target >= 0.95)")
    if args.only_shop:
        return
    print("\n## ratios (clicks/s against clicks/s in the same round)")
    ratios = {
        "shop/hello": ("hello", 0.75),
        "shop/seed": ("seed", 2),
        "shop/seed clicks alone": ("seed alone", None),
    }
    for number, runs in enumerate(rounds, 1):
        print(
            f"round {number}: shop {runs['shop']['rate']:.0f}, hello {runs['hello']['rate']:.0f}, "
            f"seed {runs['seed']['rate']:.0f}, seed clicks alone {runs['seed alone']['rate']:.0f}; "
            + ", ".join(
                f"{name} {runs['shop']['rate'] / runs[other]['rate']:.2f}"
                for name, (other, _) in ratios.items()
            )
        )
    for name, (other, target) in ratios.items():
        median = statistics.median(runs["shop"]["rate"] / runs[other]["rate"] for runs in rounds)
        print(f"median {name}: {median:.2f}" + (f" (target >= {target:g})" if target else ""))
    last = max(runs["shop"]["last_order"] for runs in rounds)
    print(
        f"last order at most {last:.2f} s after the last click (target <= 10 s for 10,000 units; the seed's "
        f"{max(runs['seed']['last_order'] for runs in rounds):.2f} s)"
    )


class Bench(Harness):
    def __init__(self, args):
        self.args = args
        # Every click counts against both limits, which stay far above what the load sends.
        super().__init__(
            args.mysql_url,
            args.redis_url,
            SECRET_KEY=SECRET,
            SECKILL_RATE_LIMIT_MEMBER="1000/second",
            SECKILL_RATE_LIMIT_IP="1000000/second",
            **(
                {"REDIS_URL": args.redis_cluster, "BROKER_REDIS_URL": args.redis_url}
                if args.redis_cluster
                else {}
            ),
        )
        self.extra_env.update(
            BENCH_REDIS_URL=args.redis_url,
            BENCH_PREFIX=f"{self.namespace}:seed:",
            BENCH_DATABASE_URL=self.settings["DATABASE_URL"],
            BENCH_PRICE=str(PRICE),
            BENCH_LISTENERS=str(args.worker_processes * args.worker_threads),
        )

    def __enter__(self):
        super().__enter__()
        with self.app.app_context():
            db.session.execute(
                insert(Member.__table__),
                [
                    {"id": m, "username": f"b{m}", "password_hash": "x"}
                    for m in range(1, self.args.members + 1)
                ],
            )
            db.session.commit()
            for number in range(2 * self.args.rounds):  # a second shop run per round with --metrics both
                fixtures.add_sku(sku(number), "秒杀 SKU", 10 * self.args.units, Decimal("99.00"))
        serializer = self.app.session_interface.get_signing_serializer(self.app)
        self.cookies = self.folder / "cookies.txt"
        # Signed in as the login view signs in, under each member's first session generation.
        self.cookies.write_text(
            "".join(f"{serializer.dumps({MEMBER: m, EPOCH: 0})}\n" for m in range(1, self.args.members + 1))
        )
        return self

    @property
    def share(self) -> int:
        """The keep-alive connections each gunicorn worker takes: a fair share (and two spare).
        Left to race for them, one worker may get most and leave the others idle."""
        return -(-self.args.connections // self.args.web_workers) + 2

    def _gunicorn(self, app, probe, options=()):
        self.start(
            "web",
            [
                str(BIN / "gunicorn"),
                *options,
                "-k",
                self.args.web_class,
                "-w",
                str(self.args.web_workers),
                "--threads",
                str(self.args.web_threads),
                "--worker-connections",
                str(self.share),
                "-b",
                f"127.0.0.1:{self.port}",
                "--log-level",
                "warning",
                "--keep-alive",
                "30",
                "--backlog",
                "2048",
                app,
            ],
        )
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
            return self._report("hello", self._fire("/hello", "/hello"))
        finally:
            self.stop_processes()

    def run_seed(self, number: int, listeners: bool):
        """The seed's design in round ``number``, with its listeners making the orders meanwhile
        (as the shop's workers do), or its clicks alone (the messages left queued)."""
        client = redis.Redis.from_url(self.args.redis_url, decode_responses=True)
        seed_prefix = f"{self.namespace}:seed:{number}:{int(listeners)}:"
        self.extra_env["BENCH_PREFIX"] = seed_prefix
        on_sale = sku(number)
        client.set(f"{seed_prefix}sec:stock:{on_sale}", self.args.units)  # the seed's preheat: the stock only
        if listeners:
            self._clear_orders()
            self.start("seed-listeners", [sys.executable, str(HERE / "seed_seckill.py")])
        self._gunicorn("seckill_burst:seed_app()", f"/miaosha/{NOT_ON_SALE}")
        try:
            result = self._fire(f"/miaosha/{on_sale}", f"/miaosha/{NOT_ON_SALE}")
            last_click = time.monotonic()

            def taken():
                return self.args.units - int(client.get(f"{seed_prefix}sec:semaphore:{on_sale}") or 0)

            if listeners:
                made = self._wait_for_orders(taken, select(func.count()).select_from(oms_order))
                last_order = time.monotonic() - last_click
            sold = taken()
        finally:
            self.stop_processes()
        if listeners:
            with self.app.app_context():
                bought = [
                    n
                    for _, n in db.session.execute(
                        select(oms_order.c.member_id, func.count()).group_by(oms_order.c.member_id)
                    )
                ]
            self._clear_orders()  # the shop's run starts from the same stock
            extra = f"  orders made              {made} of {sold} sold; last {last_order:.2f} s after the last click"
        else:
            bought = list(
                Counter(
                    json.loads(m)["userId"]
                    for m in client.lrange(f"{seed_prefix}ORDER-EXCHANGE:sec.kill", 0, -1)
                ).values()
            )
            made, last_order, extra = sum(bought), None, "  (no listener: the messages stay queued)"
        client.close()
        report = self._report(
            "seed design" + ("" if listeners else ", its clicks alone"),
            result,
            oversold=max(0, made - self.args.units),
            double=sum(n - 1 for n in bought if n > 1),
            extra=extra,
        )
        return {**report, "last_order": last_order}

    def _clear_orders(self):
        """No orders, no stock locked."""
        with self.app.app_context():
            db.session.execute(delete(wms_stock_lock))
            db.session.execute(delete(oms_order_item))
            db.session.execute(delete(oms_order))
            db.session.execute(update(wms_ware_sku).values(stock_locked=0))
            db.session.commit()

    def run_shop(self, number: int, metrics: bool = True):
        """The shop on SKU ``sku(number)``: a new sale; its metrics on or off."""
        now, on_sale = datetime.now(), sku(number)
        with self.app.app_context():
            sale = self.app.extensions["gmall"].seckill.create_sale(
                Sale(on_sale, "秒杀 ¥9.90", PRICE, self.args.units, now, now + timedelta(hours=2))
            )
        self.settings["METRICS"] = "true" if metrics else "false"
        web_metrics, worker_metrics = (
            self.folder / f"metrics-web-{number}",
            self.folder / f"metrics-worker-{number}",
        )
        worker_metrics.mkdir()
        # The workers' exposition server on a port and directory of this run's (9191 may be another's).
        self.extra_env.update(dramatiq_prom_port=str(free_port()), dramatiq_prom_db=str(worker_metrics))
        self.start_workers(self.args.worker_processes, self.args.worker_threads)
        self.extra_env.pop("dramatiq_prom_port"), self.extra_env.pop("dramatiq_prom_db")
        if metrics:
            self.extra_env["PROMETHEUS_MULTIPROC_DIR"] = str(web_metrics)
        self._gunicorn(
            "gmall_payment.webapp:create_app()",
            "/login",
            options=("-c", "python:gmall_payment.webapp.gunicorn_conf"),
        )
        self.extra_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        gate = self.app.extensions["gmall"].seckill.gate
        deadline = time.monotonic() + 30
        while gate.units_left(on_sale) != self.args.units:
            if time.monotonic() > deadline:
                raise SystemExit(f"the worker did not preheat the sale:\n{self.logs()}")
            time.sleep(0.1)
        try:
            result = self._fire(f"/seckill/{on_sale}", f"/seckill/{NOT_ON_SALE}")
            last_click = time.monotonic()
            counted = self._clicks_counted() if metrics else None

            def taken():
                return self.args.units - gate.units_left(on_sale)

            made = self._wait_for_orders(
                taken,
                select(func.count())
                .select_from(SeckillOrderRow)
                .where(
                    SeckillOrderRow.sale_id == sale.id,
                    SeckillOrderRow.status == int(SeckillOrderStatus.CREATED),
                ),
            )
            last_order = time.monotonic() - last_click
            sold = taken()
            memory = self.memory()
        finally:
            self.stop_processes()
        with self.app.app_context():
            rows = db.session.execute(
                select(SeckillOrderRow.member_id, func.count())
                .where(
                    SeckillOrderRow.sale_id == sale.id,
                    SeckillOrderRow.status == int(SeckillOrderStatus.CREATED),
                )
                .group_by(SeckillOrderRow.member_id)
            ).all()
        report = self._report(
            "shop, metrics " + ("on" if metrics else "off"),
            result,
            oversold=max(0, result["statuses"].get("200", 0) - self.args.units, made - self.args.units),
            double=sum(n - 1 for _, n in rows if n > 1),
            extra=f"  units left in Redis      {gate.units_left(on_sale)}; orders made {made} of {sold} reserved",
        )
        print(f"  last order exists        {last_order:.2f} s after the last click")
        print(f"  {memory}")
        if counted is not None:
            print(f"  /metrics counted         {counted:.0f} clicks (every worker's, warm-up included)")
        return {**report, "last_order": last_order}

    def _clicks_counted(self) -> float:
        """gmall_seckill_clicks_total summed over its outcomes, from the shop's /metrics."""
        status, reader = _one_request(self.port, "/metrics", "")
        text = reader.read().decode()
        if status != 200:
            raise SystemExit(f"/metrics answered {status}: {text[:500]}")
        return sum(
            sample.value
            for family in text_string_to_metric_families(text.split("\r\n\r\n", 1)[1])
            for sample in family.samples
            if sample.name == "gmall_seckill_clicks_total"
        )

    def _wait_for_orders(self, taken, counting) -> int:
        """Wait until the ``counting`` query says as many orders exist as ``taken()`` units
        (read each time: the clicks in flight when the load stopped still take units); how
        many it says."""
        started = time.monotonic()
        while True:
            count = taken()
            with self.app.app_context():
                made = db.session.scalar(counting)
                db.session.rollback()
            if made >= count:
                return made
            if time.monotonic() - started > self.args.timeout:
                raise SystemExit(
                    f"only {made} of {count} orders after {self.args.timeout:g}s:\n{self.logs()}"
                )
            time.sleep(0.05)

    def _fire(self, path, warm_up_path):
        """Warm up on ``warm_up_path`` (nothing on sale there), then hit ``path`` with wrk."""
        self._wrk(warm_up_path, 1)
        before = self.cpu()
        result = self._wrk(path, self.args.seconds)
        return {**result, "cpu_line": cpu_per_request(before, self.cpu(), result)}

    def _wrk(self, path, seconds) -> dict:
        return wrk(
            f"http://127.0.0.1:{self.port}",
            HERE / "clicks.lua",
            {"CLICK_COOKIES": str(self.cookies), "CLICK_PATH": path},
            self.args.connections,
            self.args.load_threads,
            seconds,
        )

    def _report(self, title, result, oversold=None, double=None, extra=None):
        rate = result["requests"] / result["seconds"]
        print(
            f"\n{title}: {result['requests']} requests in {result['seconds']:.2f} s; statuses "
            f"{dict(sorted(result['statuses'].items()))}; socket errors {result['errors']}"
        )
        print(f"  requests/s               {rate:8.0f}")
        print(f"  latency ms               p50 {result['p50']:6.1f}   p99 {result['p99']:6.1f}")
        print(f"  {result['cpu_line']}")
        if oversold is not None:
            print(f"  oversold                 {oversold}")
            print(f"  double-bought            {double}")
        if extra:
            print(extra)
        return {"rate": rate}


def _one_request(port, path, cookie):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: session={cookie}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        reader = sock.makefile("rb")
        status = int(reader.readline().split()[1])
        return status, reader


if __name__ == "__main__":
    main()
