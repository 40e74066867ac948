"""What the WeChat Pay tests share: a served shop with the offline gateway, and the steps of paying."""

import base64
import json
import re
import time
import uuid
from datetime import datetime, timedelta
from html import unescape
from urllib.parse import urljoin

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from support.shop import browser_login, csrf_token

from gmall_payment.plugins import rsa2
from gmall_payment.ports.provider import CheckoutUrls

#: WeChat Pay's notify series (86 640 s after the first attempt) divided by this: about 2 s in all.
SPEEDUP = 40000
SETTINGS = {"WECHATPAY_SANDBOX_NOTIFY_SPEEDUP": SPEEDUP, "RECONCILE_GRACE_SECONDS": 0}


def gateway_of(app):
    return app.wsgi_app.mounts["/wechatpay-sandbox"].site


def payments_of(app, order_sn):
    """The order's payments by provider, as the shop has them now."""
    with app.app_context():
        payments = app.extensions["gmall"].payments.uow().payments.for_order(order_sn)
        return {payment.payment_type: payment for payment in payments}


def payment_of(app, order_sn):
    """The order's one payment."""
    [payment] = payments_of(app, order_sn).values()
    return payment


def fulfilled_once(before):
    """``support.shop.shop_state`` once the order ``before`` (``open_order``) awarded its points
    and deducted its stock exactly once."""
    (points, growth), (stock, locked, sales) = before["member"], before["sku"]
    quantity = before["quantity"]
    return (
        (points + before["integration"], growth + before["growth"]),
        (stock - quantity, locked - quantity, sales + quantity),
    )


def checkout_urls(base_url):
    """The URLs the shop checks out with (``webapp.payment``), for calling the provider directly."""
    return CheckoutUrls(f"{base_url}/notify/wechatpay", f"{base_url}/pay/return/wechatpay")


def qr_page(base_url, order_sn, browser=None):
    """Log in, choose 微信支付 on pay.html: the shop's QR page."""
    browser = browser or browser_login(base_url)
    pay_page = browser.get(f"{base_url}/pay.html", params={"orderToken": order_sn})
    assert "微信支付" in pay_page.text
    page = browser.post(
        f"{base_url}/pay/wechatpay", data={"orderToken": order_sn, "csrf_token": csrf_token(pay_page.text)}
    )
    assert page.status_code == 200 and "<svg" in page.text, page.text
    return browser, page


def scan_page(browser, base_url, page):
    """Follow the QR page's "scan with your phone" link: the phone's page."""
    scan_url = urljoin(
        base_url + "/", unescape(re.search(r'id="scan-link" href="([^"]+)"', page.text).group(1))
    )
    scan = browser.get(scan_url)
    assert scan.status_code == 200, scan.text
    return scan


def scan_and_pay(browser, base_url, page, action="pay", scenario="normal"):
    """Follow the QR page's "scan with your phone" link, then pay (or cancel) on the phone's page."""
    scan = scan_page(browser, base_url, page)
    code_url = unescape(re.search(r'name="code_url" value="([^"]+)"', scan.text).group(1))
    action_url = urljoin(
        scan.url, unescape(re.search(r'<form method="post" action="([^"]+)"', scan.text).group(1))
    )
    return browser.post(action_url, data={"code_url": code_url, "action": action, "scenario": scenario})


# a genuine notification, made here with cryptography alone (not with the code under test)


MCHID, APPID = "1900009191", "wxd678efh567hg6787"
APIV3_KEY = "TESTONLY0123456789abcdefghijklmn"  # throw-away, 32 characters
#: Throw-away key pairs, made once per test run.
KEYS = {name: rsa2.generate_key_pair()[0] for name in ("merchant", "wechat", "old", "platform", "stranger")}
PUB_KEY_ID, OLD_PUB_KEY_ID = (
    "PUB_KEY_ID_0119000091912024111100000000000001",
    "PUB_KEY_ID_0119000091912023010100000000000009",
)


def certificate(key):
    """A self-signed throw-away platform certificate of ``key`` (certificate mode)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA (test only)")])
    now = datetime.now()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(0x5157F09EFDC096DE15EBE81A47057A7232F1B8E1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )


def configured_settings(tmp_path, merchant, wechat, old_wechat, platform):
    """The shop's WECHATPAY_* in configured mode: merchant key, two public keys (a rotation), a certificate."""

    def write(name, data):
        (tmp_path / name).write_bytes(data)
        return str(tmp_path / name)

    cert = certificate(platform)
    return {
        "WECHATPAY_MCHID": MCHID,
        "WECHATPAY_APPID": APPID,
        "WECHATPAY_CERT_SERIAL_NO": "3775B6A45ACD588826D15E583A95F5DD",
        "WECHATPAY_APIV3_KEY": APIV3_KEY,
        "WECHATPAY_PRIVATE_KEY_FILE": write("apiclient_key.pem", rsa2.private_pem(merchant)),
        "WECHATPAY_PUBLIC_KEYS": f"{PUB_KEY_ID}={write('pub_key.pem', rsa2.public_pem(wechat.public_key()))},"
        f"{OLD_PUB_KEY_ID}={write('old_pub_key.pem', rsa2.public_pem(old_wechat.public_key()))}",
        "WECHATPAY_PLATFORM_CERT_FILES": write("wechatpay_cert.pem", cert.public_bytes(Encoding.PEM)),
        "WECHATPAY_API_URL": "http://127.0.0.1:9",  # never called by these tests
    }


CERT_SERIAL = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"


def transaction(out_trade_no, total, **changes):
    plain = {
        "appid": APPID,
        "mchid": MCHID,
        "out_trade_no": out_trade_no,
        "transaction_id": "4200000000202411110000000001",
        "trade_type": "NATIVE",
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "bank_type": "OTHERS",
        "success_time": "2024-11-11T20:00:05+08:00",
        "payer": {"openid": "o-test"},
        "amount": {"total": total, "payer_total": total, "currency": "CNY", "payer_currency": "CNY"},
    }
    plain.update(changes)
    return plain


def notification(
    plain,
    key,
    serial=PUB_KEY_ID,
    apiv3_key=APIV3_KEY,
    timestamp=None,
    event_type="TRANSACTION.SUCCESS",
    associated_data="transaction",
    tamper=None,
):
    """(body, headers) of a notification as WeChat Pay sends it, signed with ``key``."""
    nonce = "5K8264ILTKCH"
    ciphertext = AESGCM(apiv3_key.encode()).encrypt(
        nonce.encode(), json.dumps(plain, ensure_ascii=False).encode(), associated_data.encode()
    )
    event = {
        "id": str(uuid.uuid4()),
        "create_time": "2024-11-11T20:00:06+08:00",
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": "支付成功",
        "resource": {
            "original_type": "transaction",
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": base64.b64encode(ciphertext).decode(),
            "associated_data": associated_data,
            "nonce": nonce,
        },
    }
    body = json.dumps(event, ensure_ascii=False)
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = base64.b64encode(
        key.sign(f"{stamp}\nNONCE42\n{body}\n".encode(), padding.PKCS1v15(), hashes.SHA256())
    )
    if tamper:
        body = tamper(body)
    return body, {
        "Wechatpay-Timestamp": stamp,
        "Wechatpay-Nonce": "NONCE42",
        "Wechatpay-Serial": serial,
        "Wechatpay-Signature": signature.decode(),
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
    }
