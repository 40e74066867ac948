"""The shop on the web server docs/deployment.md deploys it on: gunicorn's gevent workers.

The flash sale's requests mostly wait: the click on Redis, the pay step up to
SECKILL_PAY_WAIT_SECONDS for its order. On greenlets a waiting shopper holds no thread, so
one worker process serves clicks while many shoppers wait.
"""

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests
from sqlalchemy import update
from sqlalchemy.engine import make_url
from support.forms import set_password
from support.seckill_services import SECKILL, SKU, arrange, cookie
from support.seckill_web import JSON
from support.services import REDIS_URL, free_port, gunicorn_command, gunicorn_gevent, wait_until

from gmall_payment.adapters.sql.models import Member, db

pytestmark = pytest.mark.services

WAITING = 10
PAY_WAIT_SECONDS = 2
NOT_ON_SALE = 9999


def test_shoppers_waiting_for_their_orders_do_not_hold_up_the_clicks(make_shop, tmp_path):
    shop = make_shop(SECKILL_PAY_WAIT_SECONDS=PAY_WAIT_SECONDS, **SECKILL)
    sale = arrange(shop, members=WAITING + 1, units=WAITING + 1)
    with shop.app.app_context():
        shop.services.seckill.preheat(sale)
        reserved = {
            member_id: shop.services.seckill.click(member_id, SKU, f"192.0.2.{member_id}").order_sn
            for member_id in range(1, WAITING + 1)
        }  # units whose orders no worker will make

    with gunicorn_gevent(shop, tmp_path / "gunicorn.log") as url, ThreadPoolExecutor(WAITING) as pool:

        def wait(member_id):  # their order is never made: the step waits its whole bound
            started = time.monotonic()
            response = requests.get(
                f"{url}/seckill/pay?orderSn={reserved[member_id]}",
                allow_redirects=False,
                cookies={"session": cookie(shop, member_id)},
                timeout=30,
            )
            return response.status_code, time.monotonic() - started, time.monotonic()

        started = time.monotonic()
        waits = [pool.submit(wait, member_id) for member_id in range(1, WAITING + 1)]
        time.sleep(0.5)
        clicked = time.monotonic()
        click = requests.get(
            f"{url}/seckill/{SKU}",
            cookies={"session": cookie(shop, WAITING + 1)},
            headers={"Accept": "application/json"},
            timeout=30,
        )
        click_done = time.monotonic()
        answers = [w.result() for w in waits]
        all_took = time.monotonic() - started

    # Bounds that hold on a loaded machine: behind the waits, the click would come after the first
    # of them ended; one after another, the waits would take WAITING * PAY_WAIT_SECONDS.
    assert click.status_code == 200 and click.json()["outcome"] == "reserved"
    first_wait_done = min(done for _, _, done in answers)
    assert click_done < first_wait_done, (
        f"the click took {click_done - clicked:.2f}s and came after a waiting shopper's answer"
    )
    assert all(status == 202 and took >= PAY_WAIT_SECONDS - 0.1 for status, took, _ in answers), answers
    assert all_took < 0.75 * WAITING * PAY_WAIT_SECONDS, (
        f"{WAITING} waits of {PAY_WAIT_SECONDS}s took {all_took:.1f}s in all"
    )


def test_a_gevent_worker_remembers_generations_and_hears_a_password_change_at_once(
    make_shop, tmp_path, redis_namespace
):
    """The worker's subscriber is a greenlet; the announcement comes from this process."""
    shop = make_shop()
    arrange(shop, members=1, units=1)
    session = {"session": cookie(shop, 1)}

    def click():
        return requests.get(
            f"{url}/seckill/{NOT_ON_SALE}", cookies=session, headers=JSON, timeout=30
        ).status_code

    with gunicorn_gevent(shop, tmp_path / "gunicorn.log") as url:
        admin = redis.Redis.from_url(REDIS_URL)
        try:
            name = f"{redis_namespace}:sessions-ended"
            wait_until(
                lambda: any(c["name"] == name for c in admin.client_list(_type="pubsub")),
                10,
                "the worker did not subscribe",
            )
        finally:
            admin.close()
        assert [click() for _ in range(2)] == [404] * 2
        with shop.app.app_context():  # moved on behind the cache's back: the worker trusts its entry
            db.session.execute(update(Member).values(session_epoch=Member.session_epoch + 1))
            db.session.commit()
        assert click() == 404

        assert set_password(shop.app, "s1", "a new secret").exit_code == 0  # bumps and announces

        assert click() == 401


def test_gunicorn_preloading_the_app_does_not_start_gevent_workers_on_mysqlclient(make_shop, tmp_path):
    """--preload makes the app in the master, before each worker patches itself for gevent: the
    check on the settings sees no gevent, so the worker's first connection is refused instead."""
    shop = make_shop()
    mysqldb = make_url(shop.settings["DATABASE_URL"]).set(drivername="mysql+mysqldb")
    command = gunicorn_command(f"127.0.0.1:{free_port()}", 10)
    command.insert(command.index("-k"), "--preload")
    log = tmp_path / "gunicorn.log"
    with log.open("w") as output:
        gunicorn = subprocess.run(
            command,
            env=shop.env(DATABASE_URL=mysqldb.render_as_string(hide_password=False)),
            stdout=output,
            stderr=subprocess.STDOUT,
            timeout=60,
        )
    said = log.read_text()
    assert gunicorn.returncode != 0, said
    assert "Worker failed to boot" in said and "DATABASE_URL: mysql+mysqldb" in said, said
