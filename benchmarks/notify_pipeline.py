"""Notify → points: throughput and latency of the payment pipeline on MariaDB and Redis,
and the notify endpoint alone against a bare one doing the least any must do.

First the pipeline (the comparison after it leaves its events queued for no worker): the
shop and its ``dramatiq`` workers (``--worker-driver mysqldb``: theirs on mysqlclient), N
notifications posted at a fixed rate, then N more as fast as the senders can, printing
notifications/s, the latency from posting the notification to the points being awarded (p50,
p99), and each second the backlog of orders paid and not yet awarded their points. Then
``--rounds`` rounds (3) in which two servers take turns, each on gunicorn with the same
settings (``-k gevent``, ``--web-workers``) and hit for ``--seconds`` by the same load
generator (wrk, ``--connections`` keep-alive connections, posting genuine signed mockpay
notifications, each once: benchmarks/notify.lua): a bare Flask endpoint that verifies the
RSA2 signature of the form and marks the payment paid in one UPDATE on MariaDB (``bare_app``),
and the shop's ``POST /notify/mockpay`` with its workers stopped (the events it sends wait on
the broker); each round prints both rates, each process's CPU per notification and
shop/bare, then their median. After each run of the shop, the resident memory of its
processes. It prints figures and asserts nothing about them. Everything it started is
stopped, and the database and the Redis keys it made are dropped, whatever happens.

    apt-get install wrk   # Debian/Ubuntu; `brew install wrk` on macOS
    .venv/bin/python benchmarks/notify_pipeline.py -n 500 --rate 50
    .venv/bin/python benchmarks/notify_pipeline.py --no-pipeline --rounds 3 --seconds 5
"""

import argparse
import contextlib
import os
import random
import shutil
import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

import requests
from flask import Flask, request
from harness import (
    BIN,
    Harness,
    add_load_options,
    add_service_options,
    cpu_per_request,
    percentile,
    statements_per_request,
    wrk,
)
from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import make_url

from gmall_payment.adapters.sql import fixtures
from gmall_payment.adapters.sql.models import PaymentInfo, PointsLedger, db
from gmall_payment.adapters.sql.orders import insert_orders
from gmall_payment.core.model import Order, OrderItem, Payment, PaymentStatus, PointsKind
from gmall_payment.plugins import rsa2
from gmall_payment.plugins.mockpay.sandbox import SandboxTrade, signed_notification

HERE = Path(__file__).resolve().parent
PAID = int(PaymentStatus.PAID)
#: Notifications posted to warm a server up before its run (for 2 s, again and again).
WARM_UP = 200
PRICE = Decimal("19.90")
#: The bare endpoint's table: what it needs of a payment to mark it paid.
BARE_TABLE = """CREATE TABLE bare_payment (
    out_trade_no VARCHAR(64) PRIMARY KEY, status INT NOT NULL DEFAULT 0, trade_no VARCHAR(64),
    callback_time DATETIME, callback_content TEXT)"""
BARE_PAID = text(
    "UPDATE bare_payment SET status = 1, trade_no = :trade_no, callback_time = NOW(), "
    "callback_content = :raw WHERE out_trade_no = :out_trade_no AND status = 0"
)


def bare_app() -> Flask:
    """The baseline: a notify endpoint doing only what none may skip, the RSA2 signature of the
    form verified (the shop's own ``rsa2.verify``, the key loaded once) and the payment marked
    paid in one UPDATE on MariaDB."""
    public_key = rsa2.load_public_key(Path(os.environ["BENCH_PUBLIC_KEY"]).read_bytes())
    engine = create_engine(os.environ["BENCH_DATABASE_URL"], pool_size=16)
    app = Flask("bare")

    @app.post("/notify")
    def notify():
        form = request.form.to_dict()
        if not rsa2.verify(form, form.get("sign"), public_key):
            return "failure"
        with engine.begin() as connection:
            connection.execute(
                BARE_PAID,
                {
                    "trade_no": form["trade_no"],
                    "raw": request.get_data(as_text=True),
                    "out_trade_no": form["out_trade_no"],
                },
            )
        return "success"

    return app


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=500, help="notifications per pipeline run (default 500)")
    parser.add_argument(
        "--maximum-n",
        type=int,
        help="notifications of the maximum-rate run (default -n; 6000 is about a minute)",
    )
    parser.add_argument(
        "--rate", type=float, default=50, help="notifications/s of the fixed-rate run (default 50)"
    )
    parser.add_argument("--senders", type=int, default=16, help="concurrent senders (default 16)")
    add_service_options(parser)
    parser.add_argument("--web-workers", type=int, default=4, help="gunicorn workers (default 4)")
    parser.add_argument("--worker-processes", type=int, default=2, help="dramatiq processes (default 2)")
    parser.add_argument(
        "--worker-threads", type=int, default=8, help="dramatiq threads per process (default 8)"
    )
    parser.add_argument(
        "--worker-driver",
        default="",
        help="the workers' MySQL driver, e.g. mysqldb (mysqlclient; default: the shop's, pymysql)",
    )
    parser.add_argument("--timeout", type=float, default=300, help="give up on a run after this many seconds")
    add_load_options(parser, 5, "the shop alone and the bare endpoint")
    parser.add_argument(
        "--notifications",
        type=int,
        default=3000,
        help="notifications for each run of the two (default 3000; a run that needs more says so)",
    )
    parser.add_argument("--no-pipeline", action="store_true", help="the shop alone against bare only")
    args = parser.parse_args()
    if args.rounds and not shutil.which("wrk"):
        raise SystemExit("the load generator is wrk: install it (apt-get install wrk, or brew install wrk)")

    with Bench(args) as bench:
        print(
            f"web: {bench.web_kind} ({args.web_class}), {args.web_workers} workers; dramatiq: "
            f"{args.worker_processes} processes × {args.worker_threads} threads"
            f"{f' on {args.worker_driver}' if args.worker_driver else ''}; MariaDB "
            f"{make_url(args.mysql_url).host}, Redis {args.redis_url}; {os.cpu_count()} CPUs"
        )
        if not args.no_pipeline:  # first: the comparison leaves its events queued for no worker
            bench.arrange(args.n + (args.maximum_n or args.n))
            sns = list(bench.payments)
            bench.start_shop(workers=True)
            try:
                bench.run(f"fixed rate {args.rate:g}/s", sns[: args.n], rate=args.rate)
                bench.run("maximum rate", sns[args.n :], rate=None)
                print(f"  {bench.memory()}")
            finally:
                bench.stop_processes()
        if args.rounds:
            bench.compare()


class Bench(Harness):
    def __init__(self, args):
        self.args = args
        super().__init__(args.mysql_url, args.redis_url)
        self.settings["PUBLIC_URL"] = f"http://127.0.0.1:{self.port}"
        self.web_kind = "gunicorn" if shutil.which("gunicorn", path=str(BIN)) else "flask (threaded)"
        self.extra_env["BENCH_DATABASE_URL"] = self.settings["DATABASE_URL"]

    def __enter__(self):
        super().__enter__()
        config = self.app.extensions["gmall"].providers.get("mockpay").config
        self.key = config.private_key
        self.extra_env["BENCH_PUBLIC_KEY"] = str(self.folder / "bare_public.pem")
        Path(self.extra_env["BENCH_PUBLIC_KEY"]).write_bytes(rsa2.public_pem(config.public_key))
        with self.app.app_context():
            db.session.execute(text(BARE_TABLE))
            for member_id in range(1, 21):
                fixtures.add_member(member_id, f"bench{member_id}")
            fixtures.add_sku(1, "谷粒定制 帆布袋", 10**9, PRICE)
        return self

    def _serve(self, app, probe):
        if self.web_kind == "gunicorn":
            web = [
                str(BIN / "gunicorn"),
                "-k",
                self.args.web_class,
                "-w",
                str(self.args.web_workers),
                # A fair share of the load's keep-alive connections each (and two spare): else the
                # first worker up takes them all and keeps them, the others idle.
                "--worker-connections",
                str(-(-self.args.connections // self.args.web_workers) + 2),
                "-b",
                f"127.0.0.1:{self.port}",
                "--log-level",
                "warning",
                "--keep-alive",
                "30",
                app,
            ]
        else:
            web = [str(BIN / "gmall-payment"), "run", "--no-reload", "--with-threads", "-p", str(self.port)]
        self.start("web", web)
        deadline = time.monotonic() + 180  # a loaded shared machine starts gunicorn slowly
        while True:
            with contextlib.suppress(requests.RequestException):
                if requests.request(*probe, timeout=2).status_code < 500:
                    return
            if time.monotonic() > deadline or self.exited():
                raise SystemExit(f"{app} did not start:\n" + self.logs())
            time.sleep(0.2)

    def start_shop(self, workers: bool):
        self._serve("gmall_payment.webapp:create_app()", ("GET", f"{self.settings['PUBLIC_URL']}/login"))
        if workers:
            self.start_workers(self.args.worker_processes, self.args.worker_threads, self.args.worker_driver)

    def arrange(self, count):
        """``count`` orders of the members with locked stock and started mockpay payments, in a
        few bulk statements; ``self.payments``: their payments, by order number."""
        rng = random.Random(count)
        now = datetime.now()
        orders = []
        for n in range(count):
            quantity = rng.randint(1, 3)
            orders.append(
                Order(
                    f"B{n:06d}{uuid.uuid4().hex[:10]}",
                    rng.randint(1, 20),
                    0,
                    PRICE * quantity,
                    int(PRICE * quantity),
                    quantity,
                    [OrderItem(1, "谷粒定制 帆布袋", quantity, PRICE)],
                )
            )
        payments = [
            Payment(
                o.order_sn, "mockpay", o.pay_amount, f"谷粒商城订单 {o.order_sn}", now, next_query_time=now
            )
            for o in orders
        ]
        with self.app.app_context():
            insert_orders(db.session, [(order, [(1, order.items[0].quantity)]) for order in orders], now)
            rows = [{k: v for k, v in asdict(p).items() if k != "id"} for p in payments]
            db.session.execute(insert(PaymentInfo), rows)
            db.session.commit()
        self.payments = {p.order_sn: p for p in payments}

    def _notification(self, payment: Payment) -> dict:
        trade = SandboxTrade(
            payment.out_trade_no,
            f"BENCH{payment.order_sn}",
            payment.total_amount,
            payment.subject,
            datetime.now(),
        )
        return signed_notification(trade, "mockpay-sandbox", self.key)

    def _bodies(self, name: str, payments, warm_up) -> Path:
        """The notifications of ``payments`` in a file, and those of ``warm_up`` beside it."""
        path = self.folder / f"{name}.bodies"
        for kept, where in ((payments, path), (warm_up, path.with_suffix(".warm-up"))):
            where.write_text("".join(urlencode(self._notification(p)) + "\n" for p in kept))
        return path

    def compare(self):
        """The shop alone against the bare endpoint, taking turns for ``--rounds`` rounds."""
        count = self.args.notifications
        bare = [
            Payment(f"BARE{n:07d}", "mockpay", PRICE, "bare", datetime.now()) for n in range(count + WARM_UP)
        ]
        with self.app.app_context():
            db.session.execute(
                text("INSERT INTO bare_payment (out_trade_no) VALUES (:sn)"),
                [{"sn": p.out_trade_no} for p in bare],
            )
            db.session.commit()
        bare_bodies = self._bodies("bare", bare[WARM_UP:], bare[:WARM_UP])
        ratios = []
        for number in range(self.args.rounds):
            print(f"\n## round {number + 1} of {self.args.rounds}")
            self.arrange(count + WARM_UP)
            payments = list(self.payments.values())
            shop_bodies = self._bodies(f"shop-{number}", payments[WARM_UP:], payments[:WARM_UP])
            with self.app.app_context():  # the bare endpoint's payments unpaid again
                db.session.execute(text("UPDATE bare_payment SET status = 0"))
                db.session.commit()
            runs = [("bare", self._run_bare, bare_bodies), ("shop alone", self._run_shop_alone, shop_bodies)]
            rates = dict(
                run(title, bodies) for title, run, bodies in (runs if number % 2 == 0 else runs[::-1])
            )
            ratios.append(rates["shop alone"] / rates["bare"])
            print(
                f"round {number + 1}: shop alone {rates['shop alone']:.0f}/s, bare {rates['bare']:.0f}/s; shop/bare {ratios[-1]:.2f}"
            )
        print(
            f"\nmedian shop/bare: {statistics.median(ratios):.2f} (target >= 0.6; rounds {', '.join(f'{r:.2f}' for r in ratios)})"
        )

    def _run_bare(self, title, bodies):
        self._serve("notify_pipeline:bare_app()", ("POST", f"{self.settings['PUBLIC_URL']}/notify"))
        try:
            return title, self._fire("/notify", bodies, title)
        finally:
            self.stop_processes()

    def _run_shop_alone(self, title, bodies):
        self.start_shop(workers=False)
        try:
            rate = self._fire("/notify/mockpay", bodies, title)
            print(f"  {self.memory()}")
            return title, rate
        finally:
            self.stop_processes()

    def _fire(self, path, bodies, title) -> float:
        """Warm up on ``bodies``' warm-up file (the server connects to the database meanwhile: a
        connection opened under load costs this machine a quarter of a second), then hit ``path``."""
        self._wrk(path, bodies.with_suffix(".warm-up"), 2)
        before, counted = self.cpu(), self.statements()
        result = self._wrk(path, bodies, self.args.seconds)
        cpu_line = cpu_per_request(before, self.cpu(), result)
        statements_line = statements_per_request(counted, self.statements(), result)
        if result["repeats"]:
            raise SystemExit(
                f"{title}: {result['requests']} requests, more than the {self.args.notifications} notifications: "
                "raise --notifications"
            )
        rate = result["requests"] / result["seconds"]
        print(
            f"\n{title}: {result['requests']} notifications in {result['seconds']:.2f} s; statuses "
            f"{dict(sorted(result['statuses'].items()))}; not answered success {result['not_success']}; "
            f"socket errors {result['errors']}"
        )
        print(f"  notifications/s          {rate:8.1f}")
        print(f"  latency ms               p50 {result['p50']:6.1f}   p99 {result['p99']:6.1f}")
        print(f"  {cpu_line}")
        print(f"  {statements_line}")
        return rate

    def _wrk(self, path, bodies, seconds) -> dict:
        return wrk(
            self.settings["PUBLIC_URL"],
            HERE / "notify.lua",
            {"NOTIFY_BODIES": str(bodies), "NOTIFY_PATH": path, "NOTIFY_THREADS": "2"},
            self.args.connections,
            2,
            seconds,
            timeout=30,
        )

    def run(self, title, sns, rate):
        """Post ``sns``' notifications (``rate``/s, or at once); wait for their points; print."""
        sent_at, answers = {}, []
        session = requests.Session()
        session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=self.args.senders))

        signed = {sn: self._notification(self.payments[sn]) for sn in sns}  # signing costs the sender CPU

        def send(indexed):
            index, sn = indexed
            if rate:
                time.sleep(max(0.0, started + index / rate - time.monotonic()))
            params = signed[sn]
            sent_at[sn] = datetime.now()
            begun = time.monotonic()
            response = session.post(f"{self.settings['PUBLIC_URL']}/notify/mockpay", data=params, timeout=30)
            answers.append((response.text, time.monotonic() - begun))

        started = time.monotonic()
        backlog = Backlog(self.app)
        with backlog, ThreadPoolExecutor(self.args.senders) as pool:
            list(pool.map(send, enumerate(sns)))
            sending = time.monotonic() - started
            awarded = self._wait_for_points(sns, started)
        failed = [text for text, _ in answers if text != "success"]
        pipeline = time.monotonic() - started
        latencies = sorted((awarded[sn] - sent_at[sn]).total_seconds() * 1000 for sn in sns)
        responses = sorted(seconds * 1000 for _, seconds in answers)
        print(f"\n{title}: {len(sns)} notifications, {len(failed)} not answered success")
        print(f"  notifications/s          {len(sns) / sending:8.1f}   (sent in {sending:.2f} s)")
        print(
            f"  notify answer ms         p50 {percentile(responses, 50):7.1f}   p99 {percentile(responses, 99):7.1f}"
        )
        print(
            f"  notify -> points ms      p50 {percentile(latencies, 50):7.1f}   p99 {percentile(latencies, 99):7.1f}"
            f"   max {latencies[-1]:.1f}"
        )
        print(
            f"  orders fulfilled/s       {len(sns) / pipeline:8.1f}   (all points awarded after {pipeline:.2f} s)"
        )
        print(
            f"  backlog, each second     {' '.join(map(str, backlog.seconds))}   (max {max(backlog.seconds, default=0)})"
        )

    def _wait_for_points(self, sns, started) -> dict:
        wanted = set(sns)
        while True:
            with self.app.app_context():
                rows = db.session.execute(
                    select(PointsLedger.order_sn, PointsLedger.create_time).where(
                        PointsLedger.order_sn.in_(wanted)
                    )
                ).all()
                db.session.rollback()
            if len(rows) == len(wanted):
                return dict(rows)
            if time.monotonic() - started > self.args.timeout:
                raise SystemExit(
                    f"only {len(rows)} of {len(wanted)} awarded in {self.args.timeout:g}s:\n{self.logs()}"
                )
            time.sleep(0.05)


class Backlog(threading.Thread):
    """``with Backlog(app)``: every second, how many orders are paid and not yet awarded their
    points (since the run began: the payments paid less the awards), in ``seconds``."""

    def __init__(self, app):
        super().__init__(daemon=True)
        self.app, self.seconds, self.done = app, [], threading.Event()

    def __enter__(self):
        self.start_count = self._count()
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.done.set()
        self.join()

    def run(self):
        while not self.done.wait(1.0):
            self.seconds.append(self._count() - self.start_count)

    def _count(self) -> int:
        # One statement, so one snapshot: read apart (each statement its own under READ
        # COMMITTED), awards made between the two reads showed a backlog below zero.
        paid = select(func.count()).select_from(PaymentInfo).where(PaymentInfo.payment_status == PAID)
        awarded = select(func.count()).select_from(PointsLedger).where(PointsLedger.kind == PointsKind.AWARD)
        with self.app.app_context():
            backlog = db.session.scalar(select(paid.scalar_subquery() - awarded.scalar_subquery()))
            db.session.remove()
        return backlog


if __name__ == "__main__":
    main()
