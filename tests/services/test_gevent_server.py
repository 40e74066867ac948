"""The shop on the web server docs/deployment.md deploys it on: gunicorn's gevent workers.

The flash sale's requests mostly wait: the click on Redis, the pay step up to
SECKILL_PAY_WAIT_SECONDS for its order. On greenlets a waiting shopper holds no thread, so
one worker process serves clicks while many shoppers wait.
"""

import contextlib
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from support.seckill_services import SECKILL, SKU, arrange, cookie
from support.services import free_port, wait_until

pytestmark = pytest.mark.services

WAITING = 10
PAY_WAIT_SECONDS = 2


@contextlib.contextmanager
def gunicorn_gevent(shop, log_path):
    """The shop's app in one gevent worker of gunicorn; yields its base URL."""
    port = free_port()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-k",
                "gevent",
                "-w",
                "1",
                "--worker-connections",
                "100",
                "-b",
                f"127.0.0.1:{port}",
                "gmall_payment.webapp:create_app()",
            ],
            env=shop.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(url) or process.poll() is not None, 60, "gunicorn did not start")
        assert process.poll() is None, log_path.read_text()
        yield url
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _answers(url) -> bool:
    with contextlib.suppress(requests.ConnectionError, requests.Timeout):  # starting, or slow to
        return requests.get(f"{url}/login", timeout=5).status_code == 200
    return False


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
