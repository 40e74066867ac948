"""API v3's signatures, decryption and amounts, checked against values computed independently:
by cryptography directly, and by wechatpayv3 (the SDK) where it agrees with the documentation."""

import base64
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from gmall_payment_wechatpay import apiv3
from wechatpayv3 import utils as sdk

from gmall_payment.plugins import rsa2

KEY = rsa2.generate_key_pair()
APIV3_KEY = b"0123456789abcdef0123456789ABCDEF"  # throw-away test key


def test_a_request_is_signed_over_method_path_timestamp_nonce_and_body_as_documented():
    body = '{"mchid":"1900000001","description":"谷粒商城"}'
    header = apiv3.authorization(
        "POST",
        "/v3/pay/transactions/native?x=1",
        body,
        "1900000001",
        "ABC123",
        KEY[0],
        timestamp=1554208460,
        nonce="593BEC0C930BF1AFEB40B4A08C8FB242",
    )
    fields = apiv3.parse_authorization(header)
    assert header.startswith(
        'WECHATPAY2-SHA256-RSA2048 mchid="1900000001",nonce_str="593BEC0C930BF1AFEB40B4A08C8FB242"'
    )
    assert (fields["timestamp"], fields["serial_no"]) == ("1554208460", "ABC123")
    message = f"POST\n/v3/pay/transactions/native?x=1\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n{body}\n"
    KEY[1].verify(
        base64.b64decode(fields["signature"]), message.encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    assert fields["signature"] == sdk.rsa_sign(KEY[0], message)  # PKCS#1 v1.5 is deterministic


def test_an_answer_signed_here_verifies_with_the_sdk_and_one_signed_by_hand_verifies_here():
    body = '{"code_url":"weixin://wxpay/bizpayurl?pr=abc"}'
    headers = apiv3.signed_headers(body, "PUB_KEY_ID_1", KEY[0])
    assert sdk.rsa_verify(
        headers["Wechatpay-Timestamp"],
        headers["Wechatpay-Nonce"],
        body,
        headers["Wechatpay-Signature"],
        KEY[1],
    )
    stamp = str(int(datetime.now().timestamp()))
    by_hand = base64.b64encode(
        KEY[0].sign(f"{stamp}\nN1\n{body}\n".encode(), padding.PKCS1v15(), hashes.SHA256())
    )
    lower = {
        "wechatpay-timestamp": stamp,
        "wechatpay-nonce": "N1",
        "wechatpay-serial": "PUB_KEY_ID_1",
        "wechatpay-signature": by_hand.decode(),
    }
    assert apiv3.verify_headers(lower, body, {"PUB_KEY_ID_1": KEY[1]}) == "PUB_KEY_ID_1"
    with pytest.raises(apiv3.SignatureError, match="does not verify"):
        apiv3.verify_headers(lower, body + " ", {"PUB_KEY_ID_1": KEY[1]})
    with pytest.raises(apiv3.SignatureError, match="none of the configured keys"):
        apiv3.verify_headers(lower, body, {"PUB_KEY_ID_2": KEY[1]})


def test_a_genuine_signature_with_a_timestamp_over_5_minutes_old_is_a_replay():
    body = "{}"
    old = int(datetime.now().timestamp()) - 301
    headers = apiv3.signed_headers(body, "PUB_KEY_ID_1", KEY[0], timestamp=old)
    with pytest.raises(apiv3.StaleTimestamp):
        apiv3.verify_headers(headers, body, {"PUB_KEY_ID_1": KEY[1]})
    fresh = apiv3.signed_headers(body, "PUB_KEY_ID_1", KEY[0], timestamp=old + 2)
    assert apiv3.verify_headers(fresh, body, {"PUB_KEY_ID_1": KEY[1]})


def test_resource_decrypts_as_aead_aes_256_gcm_with_nonce_and_associated_data():
    plain = {"out_trade_no": "202411110001", "amount": {"total": 12345}}
    ciphertext = AESGCM(APIV3_KEY).encrypt(b"fGaT1e5hnYFL", json.dumps(plain).encode(), b"transaction")
    resource = {
        "algorithm": "AEAD_AES_256_GCM",
        "ciphertext": base64.b64encode(ciphertext).decode(),
        "nonce": "fGaT1e5hnYFL",
        "associated_data": "transaction",
        "original_type": "transaction",
    }
    assert apiv3.decrypt(resource, APIV3_KEY) == plain
    for spoilt in ({"associated_data": "refund"}, {"nonce": "xxxxxxxxxxxx"}, {"algorithm": "AES"}):
        with pytest.raises(apiv3.SignatureError):
            apiv3.decrypt({**resource, **spoilt}, APIV3_KEY)
    with pytest.raises(apiv3.SignatureError):
        apiv3.decrypt(resource, b"another-32-byte-key-0123456789ab")
    ours = apiv3.encrypt(plain, APIV3_KEY, "transaction", "transaction")
    assert (
        json.loads(sdk.aes_decrypt(ours["nonce"], ours["ciphertext"], "transaction", APIV3_KEY.decode()))
        == plain
    )


@pytest.mark.parametrize(
    ("amount", "fen"), [("0.01", 1), ("123.45", 12345), ("99999999.99", 9999999999), ("0.10", 10), ("1", 100)]
)
def test_yuan_to_fen_is_exact(amount, fen):
    assert apiv3.to_fen(Decimal(amount)) == fen
    assert apiv3.from_fen(fen) == Decimal(amount).quantize(Decimal("0.01"))


@pytest.mark.parametrize("bad", [1.5, "100", True, -1, None])
def test_fen_from_wechat_must_be_a_whole_number(bad):
    with pytest.raises(ValueError):
        apiv3.from_fen(bad)
    with pytest.raises(ValueError):
        apiv3.to_fen(Decimal("0.015"))


def test_description_is_cut_to_127_bytes_never_inside_a_character():
    text = "谷粒商城-" + "华为" * 60
    cut = apiv3.description(text)
    assert len(cut.encode("utf-8")) <= 127 and text.startswith(cut) and len(cut.encode()) > 120
    assert apiv3.description("short") == "short"


def test_time_expire_is_rfc3339_in_beijing_time():
    utc = datetime(2024, 11, 11, 12, 0, tzinfo=timezone.utc)
    assert apiv3.rfc3339(utc) == "2024-11-11T20:00:00+08:00"
    naive = datetime(2024, 11, 11, 20, 0)
    assert apiv3.parse_rfc3339(apiv3.rfc3339(naive)) == naive.astimezone()
    assert apiv3.parse_rfc3339(apiv3.rfc3339(naive)).utcoffset() == timedelta(hours=8)
