"""Notify → points: throughput and latency of the payment pipeline on MariaDB and Redis.

Starts the shop (gunicorn when installed, else Flask's threaded server) and `dramatiq`
workers as processes of its own, on a fresh MariaDB database and Redis namespace; arranges
orders with locked stock and started mockpay payments; posts N signed mockpay notifications
at a fixed rate, then N more as fast as the senders can; and prints notifications/s and the
latency from posting the notification to the points being awarded (p50, p99). It prints
figures and asserts nothing about them. Everything it started is stopped, and the database
and the Redis keys it made are dropped, whatever happens.

    .venv/bin/python benchmarks/notify_pipeline.py -n 500 --rate 50
"""

import argparse
import contextlib
import random
import shutil
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal

import requests
from harness import BIN, Harness, add_service_options, percentile
from sqlalchemy import select
from sqlalchemy.engine import make_url

from gmall_payment.adapters.sql import fixtures
from gmall_payment.adapters.sql.models import PointsLedger, db
from gmall_payment.core.model import Order, OrderItem
from gmall_payment.plugins.mockpay.sandbox import SandboxTrade, signed_notification

PRICE = Decimal("19.90")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=500, help="notifications per run (default 500)")
    parser.add_argument("--rate", type=float, default=50, help="notifications/s of the fixed-rate run (default 50)")
    parser.add_argument("--senders", type=int, default=16, help="concurrent senders (default 16)")
    add_service_options(parser)
    parser.add_argument("--web-workers", type=int, default=4, help="gunicorn workers (default 4)")
    parser.add_argument("--worker-processes", type=int, default=2, help="dramatiq processes (default 2)")
    parser.add_argument("--worker-threads", type=int, default=8, help="dramatiq threads per process (default 8)")
    parser.add_argument("--timeout", type=float, default=300, help="give up on a run after this many seconds")
    args = parser.parse_args()

    with Bench(args) as bench:
        bench.arrange(2 * args.n)
        print(f"web: {bench.web_kind}, {args.web_workers} workers; dramatiq: {args.worker_processes} processes × "
              f"{args.worker_threads} threads; MariaDB {make_url(args.mysql_url).host}, Redis {args.redis_url}")
        bench.run(f"fixed rate {args.rate:g}/s", bench.sns[: args.n], rate=args.rate)
        bench.run("maximum rate", bench.sns[args.n:], rate=None)


class Bench(Harness):
    def __init__(self, args):
        self.args = args
        super().__init__(args.mysql_url, args.redis_url)
        self.settings["PUBLIC_URL"] = f"http://127.0.0.1:{self.port}"
        self.web_kind = "gunicorn" if shutil.which("gunicorn", path=str(BIN)) else "flask (threaded)"

    def __enter__(self):
        super().__enter__()
        self.key = self.app.extensions["gmall"].providers.get("mockpay").config.private_key
        self._start_processes()
        return self

    def _start_processes(self):
        if self.web_kind == "gunicorn":
            web = [str(BIN / "gunicorn"), "-w", str(self.args.web_workers), "--threads", "4", "-b",
                   f"127.0.0.1:{self.port}", "--log-level", "warning", "gmall_payment.webapp:create_app()"]
        else:
            web = [str(BIN / "gmall-payment"), "run", "--no-reload", "--with-threads", "-p", str(self.port)]
        self.start("web", web)
        self.start("worker", [str(BIN / "dramatiq"), "gmall_payment.webapp.worker", "-p",
                              str(self.args.worker_processes), "-t", str(self.args.worker_threads)])
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.settings['PUBLIC_URL']}/login", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline or self.exited():
                raise SystemExit("the shop or the worker did not start:\n" + self.logs())
            time.sleep(0.2)

    def arrange(self, count):
        """Members, a SKU with stock, and ``count`` orders with locked stock and started payments."""
        rng = random.Random(1)
        services = self.app.extensions["gmall"]
        self.payments = {}
        with self.app.app_context():
            for member_id in range(1, 21):
                fixtures.add_member(member_id, f"bench{member_id}")
            fixtures.add_sku(1, "谷粒定制 帆布袋", 10 * count, PRICE)
            for n in range(count):
                quantity = rng.randint(1, 3)
                order = Order(f"B{n:06d}{uuid.uuid4().hex[:10]}", rng.randint(1, 20), 0, PRICE * quantity,
                              int(PRICE * quantity), quantity, [OrderItem(1, "谷粒定制 帆布袋", quantity, PRICE)])
                fixtures.add_order(order, [(1, quantity)])
                self.payments[order.order_sn] = services.payments.start(order.order_sn, "mockpay")
        self.sns = list(self.payments)

    def run(self, title, sns, rate):
        """Post ``sns``' notifications (``rate``/s, or at once); wait for their points; print."""
        sent_at, answers = {}, []
        session = requests.Session()
        session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=self.args.senders))

        def send(indexed):
            index, sn = indexed
            if rate:
                time.sleep(max(0.0, started + index / rate - time.monotonic()))
            payment = self.payments[sn]
            trade = SandboxTrade(sn, f"BENCH{sn}", payment.total_amount, payment.subject, datetime.now())
            params = signed_notification(trade, "mockpay-sandbox", self.key)
            sent_at[sn] = datetime.now()
            begun = time.monotonic()
            response = session.post(f"{self.settings['PUBLIC_URL']}/notify/mockpay", data=params, timeout=30)
            answers.append((response.text, time.monotonic() - begun))

        started = time.monotonic()
        with ThreadPoolExecutor(self.args.senders) as pool:
            list(pool.map(send, enumerate(sns)))
        sending = time.monotonic() - started
        failed = [text for text, _ in answers if text != "success"]
        awarded = self._wait_for_points(sns, started)
        pipeline = time.monotonic() - started
        latencies = sorted((awarded[sn] - sent_at[sn]).total_seconds() * 1000 for sn in sns)
        responses = sorted(seconds * 1000 for _, seconds in answers)
        print(f"\n{title}: {len(sns)} notifications, {len(failed)} not answered success")
        print(f"  notifications/s          {len(sns) / sending:8.1f}   (sent in {sending:.2f} s)")
        print(f"  notify answer ms         p50 {percentile(responses, 50):7.1f}   p99 {percentile(responses, 99):7.1f}")
        print(f"  notify -> points ms      p50 {percentile(latencies, 50):7.1f}   p99 {percentile(latencies, 99):7.1f}"
              f"   max {latencies[-1]:.1f}")
        print(f"  orders fulfilled/s       {len(sns) / pipeline:8.1f}   (all points awarded after {pipeline:.2f} s)")

    def _wait_for_points(self, sns, started) -> dict:
        wanted = set(sns)
        while True:
            with self.app.app_context():
                rows = db.session.execute(select(PointsLedger.order_sn, PointsLedger.create_time)
                                          .where(PointsLedger.order_sn.in_(wanted))).all()
                db.session.rollback()
            if len(rows) == len(wanted):
                return dict(rows)
            if time.monotonic() - started > self.args.timeout:
                raise SystemExit(f"only {len(rows)} of {len(wanted)} awarded in {self.args.timeout:g}s:\n{self.logs()}")
            time.sleep(0.05)


if __name__ == "__main__":
    main()
