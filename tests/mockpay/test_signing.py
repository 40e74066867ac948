"""RSA2 parameter signing (Alipay's scheme) and key handling."""

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from support.races import race

from gmall_payment.plugins import rsa2

PARAMS = {
    "out_trade_no": "202411260001",
    "app_id": "mockpay-sandbox",
    "total_amount": "12.30",
    "subject": "谷粒商城-手机 & 壳=1",
}


def test_canonical_string_sorts_and_drops_signature_and_empty_values():
    params = {**PARAMS, "sign": "xxx", "sign_type": "RSA2", "body": "", "buyer_id": None}
    assert rsa2.canonical_string(params) == (
        "app_id=mockpay-sandbox&out_trade_no=202411260001&subject=谷粒商城-手机 & 壳=1&total_amount=12.30"
    )


def test_signature_verifies(key_pair):
    private_key, public_key = key_pair
    signature = rsa2.sign(PARAMS, private_key)
    assert rsa2.verify(PARAMS, signature, public_key)


def test_signature_ignores_sign_fields_and_empty_values(key_pair):
    private_key, public_key = key_pair
    signature = rsa2.sign(PARAMS, private_key)
    assert rsa2.verify({**PARAMS, "sign": signature, "sign_type": "RSA2", "memo": ""}, signature, public_key)


def test_tampered_value_fails(key_pair):
    private_key, public_key = key_pair
    signature = rsa2.sign(PARAMS, private_key)
    assert not rsa2.verify({**PARAMS, "total_amount": "0.01"}, signature, public_key)


def test_wrong_key_fails(key_pair, other_key_pair):
    signature = rsa2.sign(PARAMS, other_key_pair[0])
    assert not rsa2.verify(PARAMS, signature, key_pair[1])


@pytest.mark.parametrize(
    "signature", [None, "", "not base64!", "AAAA", base64.b64encode(b"x" * 256).decode()]
)
def test_junk_signature_is_false_not_an_exception(key_pair, signature):
    assert rsa2.verify(PARAMS, signature, key_pair[1]) is False


def test_rotation_list_accepts_old_and_new_keys(key_pair, other_key_pair):
    keys = [key_pair[1], other_key_pair[1]]
    for private_key, _ in (key_pair, other_key_pair):
        assert rsa2.verify(PARAMS, rsa2.sign(PARAMS, private_key), keys)


def test_public_key_loads_from_pem_and_from_one_line_base64(key_pair):
    public_key = key_pair[1]
    pem = rsa2.public_pem(public_key).decode()
    one_line = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    for text in (pem, one_line):
        loaded = rsa2.load_public_key(text)
        assert loaded.public_numbers() == public_key.public_numbers()


def test_private_key_loads_from_pkcs8_pkcs1_and_one_line_base64(key_pair):
    private_key = key_pair[0]
    pkcs1 = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    pkcs8 = rsa2.private_pem(private_key).decode()
    one_line = "".join(line for line in pkcs8.splitlines() if not line.startswith("-----"))
    for text in (pkcs1, pkcs8, one_line):
        loaded = rsa2.load_private_key(text)
        assert loaded.private_numbers() == private_key.private_numbers()


def test_a_private_key_is_parsed_once_per_process(key_pair, other_key_pair):
    pem = rsa2.private_pem(key_pair[0])
    assert rsa2.load_private_key(pem) is rsa2.load_private_key(pem.decode() + "\n")
    assert rsa2.load_private_key(rsa2.private_pem(other_key_pair[0])) is not rsa2.load_private_key(pem)


@pytest.mark.parametrize(
    "text", ["", "hello world", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----", "QUJD"]
)
def test_junk_public_key_is_a_clear_value_error(text):
    with pytest.raises(ValueError, match="RSA public key"):
        rsa2.load_public_key(text)


def test_junk_private_key_is_a_clear_value_error(key_pair):
    with pytest.raises(ValueError, match="RSA private key"):
        rsa2.load_private_key("MIIB not a key")
    with pytest.raises(ValueError, match="RSA private key"):  # a public key where a private one belongs
        rsa2.load_private_key(rsa2.public_pem(key_pair[1]))


def test_ensure_key_pair_generates_once_and_then_reuses(tmp_path):
    private_key, public_key = rsa2.ensure_key_pair(tmp_path / "keys", "mockpay")
    again_private, again_public = rsa2.ensure_key_pair(tmp_path / "keys", "mockpay")
    assert again_private.private_numbers() == private_key.private_numbers()
    on_disk = rsa2.load_public_key((tmp_path / "keys" / "mockpay_public.pem").read_text())
    assert on_disk.public_numbers() == public_key.public_numbers()
    assert rsa2.verify(PARAMS, rsa2.sign(PARAMS, private_key), again_public)


def test_ensure_key_pair_concurrent_first_use_yields_one_valid_pair(tmp_path):
    folder = tmp_path / "keys"
    results = race(8, lambda _: rsa2.ensure_key_pair(folder, "mockpay"))

    assert len(results) == 8
    on_disk = rsa2.load_public_key((folder / "mockpay_public.pem").read_bytes())
    assert {private.private_numbers().d for private, _ in results} == {
        rsa2.load_private_key((folder / "mockpay_private.pem").read_bytes()).private_numbers().d
    }
    for private_key, public_key in results:
        assert public_key.public_numbers() == on_disk.public_numbers()
        assert rsa2.verify(PARAMS, rsa2.sign(PARAMS, private_key), on_disk)
    assert sorted(path.name for path in folder.iterdir()) == ["mockpay_private.pem", "mockpay_public.pem"]
