"""Certificate mode (公钥证书): the serial numbers, checked against values computed without the
code under test, and the checks that stop the start naming the setting.

The expected SNs come from Alipay itself (its root bundle's SN, which every Alipay SDK and
console page shows) and from ``openssl x509 -issuer -serial -nameopt RFC2253`` hashed here
with hashlib, as Alipay's documentation describes the computation.
"""

import hashlib
import re
import subprocess
from datetime import datetime, timedelta, timezone

import pytest
from alipay.exceptions import AliPayValidationError
from cryptography import x509
from cryptography.x509.oid import NameOID
from support.alipay import ALIPAY_ROOT_BUNDLE, APP_ID, issued_by_gateway_ca

from gmall_payment.plugins import rsa2
from gmall_payment.plugins.alipay.certificates import (
    CertificateClient,
    cert_sn,
    java_name,
    read_certificates,
    root_cert_sn,
)
from gmall_payment.plugins.alipay.config import AlipayConfig
from gmall_payment.plugins.alipay.gateway import response_body
from gmall_payment.plugins.alipay.sandbox_certificates import (
    ensure_offline_certificates,
    issue,
    name,
    pem,
)

#: The alipay_root_cert_sn Alipay's SDKs and documentation give for its root bundle.
ALIPAY_ROOT_SN = "687b59193f3f462dd5336e5abf83c5d8_02941eef3187dddf3d3b83462e1dfcf6"
PEM_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\n?", re.DOTALL)


def openssl_sn(block: bytes) -> str:
    """Alipay's SN computed from openssl's output: md5(issuer in RFC 2253, UTF-8 unescaped + decimal serial)."""
    out = subprocess.run(
        ["openssl", "x509", "-noout", "-issuer", "-serial", "-nameopt", "RFC2253,-esc_msb"],
        input=block,
        capture_output=True,
        check=True,
    ).stdout.decode("utf-8")
    issuer = re.search(r"^issuer=(.*)$", out, re.MULTILINE).group(1)
    serial = int(re.search(r"^serial=([0-9A-F]+)$", out, re.MULTILINE).group(1), 16)
    return hashlib.md5(f"{issuer}{serial}".encode()).hexdigest()


def openssl_signature_algorithm(block: bytes) -> str:
    out = subprocess.run(
        ["openssl", "x509", "-noout", "-text", "-certopt", "no_pubkey,no_extensions"],
        input=block,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return re.search(r"Signature Algorithm: (\S+)", out).group(1)


@pytest.fixture
def pki(tmp_path, merchant_keys, gateway_keys):
    """The offline gateway's generated files, for the merchant's and the gateway's keys."""
    return ensure_offline_certificates(tmp_path / "pki", merchant_keys[1], gateway_keys[1])


@pytest.fixture
def cert_settings(tmp_path, pki, merchant_keys):
    """The shop configured in certificate mode with files, as Alipay's console gives them."""
    return {
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "ALIPAY_APP_ID": APP_ID,
        "ALIPAY_APP_PRIVATE_KEY": rsa2.private_pem(merchant_keys[0]).decode(),
        "ALIPAY_APP_CERT_FILE": str(pki.app),
        "ALIPAY_PUBLIC_CERT_FILE": str(pki.alipay),
        "ALIPAY_ROOT_CERT_FILE": str(pki.root),
    }


def root_authority(label="Other"):
    key, _ = rsa2.generate_key_pair()
    return issue(name(f"{label} Root CA (throw-away)"), key.public_key(), None, key, ca=True), key


# the serial numbers


def test_the_root_sn_of_alipays_own_root_bundle_is_the_one_alipay_gives():
    """Four roots (SM2, RSA sha256, ECC, RSA sha1): only the two RSA ones count, in file order."""
    bundle = ALIPAY_ROOT_BUNDLE.read_bytes()
    blocks = PEM_BLOCK.findall(bundle)
    algorithms = [openssl_signature_algorithm(block) for block in blocks]
    assert algorithms == [
        "SM2-with-SM3",
        "sha256WithRSAEncryption",
        "ecdsa-with-SHA384",
        "sha1WithRSAEncryption",
    ]
    by_openssl = "_".join(
        openssl_sn(block) for block, alg in zip(blocks, algorithms, strict=True) if "RSA" in alg
    )
    assert by_openssl == ALIPAY_ROOT_SN

    assert root_cert_sn(read_certificates(bundle, "ALIPAY_ROOT_CERT", roots=True)) == ALIPAY_ROOT_SN


def test_each_sn_is_md5_of_the_issuer_and_the_decimal_serial_as_openssl_prints_them(pki):
    """A UTF-8 issuer (the Class 2 CA's O is Chinese), serials of 127 bits; the root's SN leaves
    the Ed25519 root of the generated bundle out."""
    for path in (pki.app, pki.alipay):
        first = PEM_BLOCK.findall(path.read_bytes())[0]
        assert cert_sn(read_certificates(first, path.name)[0]) == openssl_sn(first)
    root_blocks = PEM_BLOCK.findall(pki.root.read_bytes())
    assert [openssl_signature_algorithm(b) for b in root_blocks] == ["sha256WithRSAEncryption", "ED25519"]
    assert root_cert_sn(read_certificates(pki.root.read_bytes(), "root")) == openssl_sn(root_blocks[0])


def test_the_issuers_name_is_written_as_java_writes_it():
    """Java's RFC 2253: the last RDN first, ``,=+<>#;"\\`` escaped anywhere, spaces at the ends,
    emailAddress (no RFC 2253 keyword) as its OID and the hex of its DER."""
    key, _ = rsa2.generate_key_pair()
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, " Ant, Inc. "),
            x509.NameAttribute(NameOID.COMMON_NAME, "CA=1+2 #3"),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, "ca@example.com"),
        ]
    )
    root = issue(subject, key.public_key(), None, key, ca=True)
    email_der = "16" + f"{len('ca@example.com'):02x}" + b"ca@example.com".hex()
    expected = f"1.2.840.113549.1.9.1=#{email_der},CN=CA\\=1\\+2 \\#3,O=\\ Ant\\, Inc.\\ ,C=CN"
    assert java_name(root.issuer) == expected
    assert root_cert_sn([root]) == hashlib.md5(f"{expected}{root.serial_number}".encode()).hexdigest()


# the checks at start


def test_certificate_mode_is_read_from_files(cert_settings, pki):
    config = AlipayConfig.from_settings(cert_settings)
    mode = config.certificates
    app_block, alipay_block = (PEM_BLOCK.findall(p.read_bytes())[0] for p in (pki.app, pki.alipay))
    assert mode.app_cert_sn == openssl_sn(app_block)
    assert mode.alipay_root_cert_sn == openssl_sn(PEM_BLOCK.findall(pki.root.read_bytes())[0])
    assert [c.sn for c in mode.alipay_certificates] == [openssl_sn(alipay_block)]
    assert config.alipay_public_keys == mode.public_keys  # notifications: verified with the certificate's key


def test_inline_pem_with_escaped_newlines_is_read(cert_settings, pki):
    inline = {
        **cert_settings,
        "ALIPAY_APP_CERT_FILE": None,
        "ALIPAY_APP_CERT": pki.app.read_text().replace("\n", "\\n"),
        "ALIPAY_ROOT_CERT_FILE": None,
        "ALIPAY_ROOT_CERT": pki.root.read_text(),
    }
    assert (
        AlipayConfig.from_settings(inline).certificates
        == AlipayConfig.from_settings(cert_settings).certificates
    )


def test_bad_or_mismatched_certificates_stop_the_start_naming_the_setting(
    tmp_path, cert_settings, pki, merchant_keys, gateway_keys, other_keys
):
    other_root, other_root_key = root_authority()
    now = datetime.now(timezone.utc)
    past = {"not_before": now - timedelta(days=400), "not_after": now - timedelta(days=1)}
    sm2_root = PEM_BLOCK.findall(ALIPAY_ROOT_BUNDLE.read_bytes())[0].decode()
    cases = [
        ("ALIPAY_APP_CERT_FILE", str(tmp_path / "none.crt"), "ALIPAY_APP_CERT_FILE: cannot read"),
        ("ALIPAY_APP_CERT", "not a certificate", "ALIPAY_APP_CERT: no PEM certificate"),
        (
            "ALIPAY_APP_CERT",
            "-----BEGIN CERTIFICATE-----\nbm9wZQ==\n-----END CERTIFICATE-----",
            "ALIPAY_APP_CERT: not a usable certificate",
        ),
        (
            "ALIPAY_APP_CERT",
            sm2_root,
            "ALIPAY_APP_CERT: not an RSA certificate (its key is 1.2.840.10045.2.1)",
        ),
        (
            "ALIPAY_APP_CERT",
            issued_by_gateway_ca(pki.root.parent, "Another app", other_keys[1]).decode(),
            "ALIPAY_APP_CERT: the certificate's public key is not the one of ALIPAY_APP_PRIVATE_KEY",
        ),
        (
            "ALIPAY_APP_CERT",
            issued_by_gateway_ca(pki.root.parent, "Expired app", merchant_keys[1], **past).decode(),
            "ALIPAY_APP_CERT: CN=Expired app (throw-away),OU=Certification Authority,O=gmall-payment "
            "offline Alipay gateway,C=CN expired on",
        ),
        (
            "ALIPAY_PUBLIC_CERT",
            pem(issue(name("Foreign Alipay"), gateway_keys[1], other_root, other_root_key)).decode(),
            "ALIPAY_PUBLIC_CERT: CN=Foreign Alipay,OU=Certification Authority,O=gmall-payment offline "
            "Alipay gateway,C=CN is not issued under ALIPAY_ROOT_CERT",
        ),
        (
            "ALIPAY_PUBLIC_CERT",
            issued_by_gateway_ca(pki.root.parent, "Expired Alipay", gateway_keys[1], **past).decode(),
            "ALIPAY_PUBLIC_CERT: CN=Expired Alipay (throw-away)",
        ),
        (
            "ALIPAY_PUBLIC_CERT",
            pki.app.read_text(),
            "ALIPAY_PUBLIC_CERT is the application's own certificate",
        ),
        (
            "ALIPAY_ROOT_CERT",
            pem(other_root).decode(),
            "Class 2 CA (throw-away),OU=Certification Authority,O=gmall-payment 离线支付宝网关,C=CN is not issued under "
            "ALIPAY_ROOT_CERT (issuer CN=Offline Alipay Root CA",
        ),
        ("ALIPAY_ROOT_CERT", None, "ALIPAY_ROOT_CERT (or _FILE) is needed in certificate mode"),
        ("ALIPAY_PUBLIC_CERT", None, "ALIPAY_PUBLIC_CERT (or _FILE) is needed in certificate mode"),
        (
            "ALIPAY_PUBLIC_KEY",
            rsa2.public_key_base64(gateway_keys[1]),
            "ALIPAY_PUBLIC_KEY is set with certificate mode's",
        ),
    ]
    for setting, value, message in cases:
        base = setting.removesuffix("_FILE")
        changes = {base: None, f"{base}_FILE": None, setting: value}  # inline or a file, not both
        with pytest.raises(ValueError) as error:
            AlipayConfig.from_settings({**cert_settings, **changes})
        assert message in str(error.value), (setting, str(error.value))


def test_a_root_bundle_without_an_rsa_root_is_refused(cert_settings, tmp_path):
    blocks = PEM_BLOCK.findall(ALIPAY_ROOT_BUNDLE.read_bytes())
    path = tmp_path / "sm2_and_ecc_only.crt"
    path.write_bytes(blocks[0] + b"\n" + blocks[2])
    with pytest.raises(ValueError, match=r"ALIPAY_ROOT_CERT_FILE \(.*\): no RSA root certificate"):
        AlipayConfig.from_settings({**cert_settings, "ALIPAY_ROOT_CERT_FILE": str(path)})


def test_a_bad_certificate_stops_the_shop_from_starting(tmp_path, cert_settings):
    from support.shop import make_app

    with pytest.raises(ValueError, match="ALIPAY_APP_CERT: no PEM certificate"):
        make_app(tmp_path, **{**cert_settings, "ALIPAY_APP_CERT_FILE": None, "ALIPAY_APP_CERT": "garbage"})


# responses: verified with the certificate they name


def test_a_response_is_verified_with_the_key_of_the_certificate_it_names_only(
    tmp_path, cert_settings, pki, gateway_keys, other_keys
):
    renewed = issued_by_gateway_ca(pki.root.parent, "Renewed Alipay", other_keys[1])
    settings = {**cert_settings, "ALIPAY_SECOND_PUBLIC_CERT": renewed.decode()}
    mode = AlipayConfig.from_settings(settings).certificates
    current, second = (c.sn for c in mode.alipay_certificates)
    assert second == cert_sn(read_certificates(renewed, "renewed")[0]) != current
    client = CertificateClient(APP_ID, other_keys[0], mode, gateway=lambda: "http://127.0.0.1:9/gateway.do")
    method, content = "alipay.trade.query", {"code": "10000", "msg": "Success", "out_trade_no": "1"}
    response_type = "alipay_trade_query_response"

    def answer(key, sn):
        return client._verify_and_return_sync_response(response_body(method, content, key, sn), response_type)

    assert answer(gateway_keys[0], current) == content
    assert answer(other_keys[0], second) == content  # either certificate, during a rotation
    assert answer(gateway_keys[0], None) == content  # names none: the current one, as Alipay's SDK does
    with pytest.raises(AliPayValidationError):
        answer(gateway_keys[0], second)  # signed by one, naming the other
    with pytest.raises(AliPayValidationError, match="not one of"):
        answer(gateway_keys[0], "0" * 32)


def test_requests_carry_both_serial_numbers_under_the_signature(cert_settings, merchant_keys):
    mode = AlipayConfig.from_settings(cert_settings).certificates
    client = CertificateClient(
        APP_ID, merchant_keys[0], mode, gateway=lambda: "http://127.0.0.1:9/gateway.do"
    )
    body = client.build_body("alipay.trade.query", {"out_trade_no": "1"})
    assert (body["app_cert_sn"], body["alipay_root_cert_sn"]) == (mode.app_cert_sn, mode.alipay_root_cert_sn)
    signed = dict(re.findall(r"([^&=]+)=([^&]*)", client.sign_data(body)))
    assert signed["app_cert_sn"] == mode.app_cert_sn and "sign" in signed


@pytest.mark.usefixtures("builtin_providers_only")
def test_a_production_shop_starts_in_certificate_mode_and_check_names_a_certificate_it_refuses(
    tmp_path, monkeypatch, pki, merchant_keys
):
    from click.testing import CliRunner
    from support.production import production_config

    from gmall_payment.webapp import create_app
    from gmall_payment.webapp.cli import main

    private_key = tmp_path / "cert_mode_app_private.pem"
    private_key.write_bytes(rsa2.private_pem(merchant_keys[0]))
    config = production_config(
        tmp_path,
        ALIPAY_APP_PRIVATE_KEY_FILE=str(private_key),
        ALIPAY_PUBLIC_KEY_FILE=None,
        ALIPAY_APP_CERT_FILE=str(pki.app),
        ALIPAY_PUBLIC_CERT_FILE=str(pki.alipay),
        ALIPAY_ROOT_CERT_FILE=str(pki.root),
    )
    provider = create_app(config).extensions["gmall"].providers.get("alipay")
    assert provider.config.certificates is not None and not provider.config.offline

    monkeypatch.chdir(tmp_path)
    environment = {
        f"GMALL_{key}": str(value).lower() if value is True else str(value) for key, value in config.items()
    }
    environment["GMALL_ALIPAY_ROOT_CERT_FILE"] = str(ALIPAY_ROOT_BUNDLE)  # Alipay's: ours is not under it
    result = CliRunner().invoke(main, ["check"], env=environment)
    assert result.exit_code == 1
    assert "FATAL settings: ALIPAY_PUBLIC_CERT_FILE (" in result.output
    assert "is not issued under ALIPAY_ROOT_CERT" in result.output
