"""``wechatpay-sandbox``, the distribution's console command: the offline gateway served alone,
started here as a subprocess on a free port, its keys generated or read from files; its answers
are signed (checked here with cryptography alone)."""

import base64
import json
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

from gmall_payment.plugins import rsa2

COMMAND = Path(sys.executable).with_name("wechatpay-sandbox")  # the console script of the distribution
MCHID, APPID = "1900000001", "wx0000000000000001"  # the offline gateway's
SERIAL = "0FF11E0000000000000000000000000000000001"


@pytest.fixture
def serve(tmp_path):
    """Start the command with these arguments on port 0; (base URL, what it printed)."""
    started = []

    def start(*args):
        process = subprocess.Popen(
            [str(COMMAND), "--port", "0", "--instance", str(tmp_path / "instance"), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        started.append(process)
        lines = [process.stdout.readline()]
        found = re.search(r"at (http://127\.0\.0\.1:\d+)", lines[0])
        assert found, lines[0] + process.stdout.read()
        while "the phone's page" not in lines[-1]:
            lines.append(process.stdout.readline())
        return found.group(1), "".join(lines)

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=10)


def authorization(method, path, body, merchant_key):
    stamp, nonce = str(int(time.time())), uuid.uuid4().hex
    message = f"{method}\n{path}\n{stamp}\n{nonce}\n{body}\n".encode()
    signature = base64.b64encode(merchant_key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()
    return (
        f'WECHATPAY2-SHA256-RSA2048 mchid="{MCHID}",nonce_str="{nonce}",signature="{signature}",'
        f'timestamp="{stamp}",serial_no="{SERIAL}"'
    )


def call(base_url, method, path, merchant_key, payload=None):
    body = "" if payload is None else json.dumps(payload)
    headers = {"Authorization": authorization(method, path, body, merchant_key), "Accept": "application/json"}
    if body:
        headers["Content-Type"] = "application/json"
    return requests.request(method, base_url + path, data=body.encode() or None, headers=headers, timeout=10)


def assert_signed(answer, gateway_public_key):
    """WeChat Pay's answer signature: over timestamp, nonce and body, by the key of Wechatpay-Serial."""
    assert answer.headers["Wechatpay-Serial"].startswith("PUB_KEY_ID_")
    message = f"{answer.headers['Wechatpay-Timestamp']}\n{answer.headers['Wechatpay-Nonce']}\n{answer.text}\n"
    gateway_public_key.verify(
        base64.b64decode(answer.headers["Wechatpay-Signature"]),
        message.encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )  # raises if it does not hold


def native_order(out_trade_no):
    return {
        "appid": APPID,
        "mchid": MCHID,
        "description": "谷粒商城-测试",
        "out_trade_no": out_trade_no,
        "notify_url": "http://127.0.0.1:9/notify/wechatpay",
        "amount": {"total": 1234, "currency": "CNY"},
    }


def test_the_command_serves_the_gateway_with_generated_keys_and_signs_its_answers(serve, tmp_path):
    base_url, printed = serve()
    folder = tmp_path / "instance" / "wechatpay"
    merchant_key = load_pem_private_key((folder / "merchant_private.pem").read_bytes(), None)
    gateway_public_key = load_pem_public_key((folder / "gateway_public.pem").read_bytes())
    assert f"GMALL_WECHATPAY_API_URL={base_url}" in printed
    assert f"GMALL_WECHATPAY_PRIVATE_KEY_FILE={folder.resolve()}/merchant_private.pem" in printed
    assert f"GMALL_WECHATPAY_APIV3_KEY=$(cat {folder.resolve()}/apiv3_key)" in printed
    assert (folder / "apiv3_key").read_text() not in printed  # a path, never the key itself

    ordered = call(
        base_url, "POST", "/v3/pay/transactions/native", merchant_key, native_order("202412010001")
    )
    queried = call(
        base_url, "GET", "/v3/pay/transactions/out-trade-no/202412010001?mchid=1900000001", merchant_key
    )
    stranger = call(
        base_url,
        "GET",
        "/v3/pay/transactions/out-trade-no/202412010001?mchid=1900000001",
        rsa2.generate_key_pair()[0],
    )

    assert ordered.status_code == 200 and ordered.json()["code_url"].startswith("weixin://wxpay/"), (
        ordered.text
    )
    assert (queried.status_code, queried.json()["trade_state"]) == (200, "NOTPAY")
    assert (stranger.status_code, stranger.json()["code"]) == (401, "SIGN_ERROR")
    for answer in (ordered, queried, stranger):
        assert_signed(answer, gateway_public_key)


def test_the_command_takes_its_keys_from_files(serve, tmp_path):
    (gateway_key, _), (merchant_key, merchant_public) = rsa2.generate_key_pair(), rsa2.generate_key_pair()
    (tmp_path / "gateway.pem").write_bytes(rsa2.private_pem(gateway_key))
    (tmp_path / "merchant_public.pem").write_bytes(rsa2.public_pem(merchant_public))
    (tmp_path / "apiv3_key").write_text("TESTONLY0123456789abcdefghijklmn\n")

    base_url, _ = serve(
        "--private-key",
        str(tmp_path / "gateway.pem"),
        "--merchant-public-key",
        str(tmp_path / "merchant_public.pem"),
        "--apiv3-key-file",
        str(tmp_path / "apiv3_key"),
    )
    answer = call(
        base_url, "GET", "/v3/pay/transactions/out-trade-no/209900000000?mchid=1900000001", merchant_key
    )

    assert (answer.status_code, answer.json()["code"]) == (404, "ORDER_NOT_EXIST")
    assert_signed(answer, gateway_key.public_key())
    assert not (tmp_path / "instance" / "wechatpay").exists()  # nothing generated: every key was given


def test_the_command_refuses_a_key_file_it_cannot_read(tmp_path):
    result = subprocess.run(
        [
            str(COMMAND),
            "--port",
            "0",
            "--instance",
            str(tmp_path / "instance"),
            "--private-key",
            str(tmp_path / "missing.pem"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0 and "--private-key" in result.stderr and "missing.pem" in result.stderr
