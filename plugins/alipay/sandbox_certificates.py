"""Throw-away certificates for the offline gateway's certificate mode (``ALIPAY_SANDBOX_CERT_MODE``).

Shaped as Alipay's: a root CA, a "Class 2" CA under it, Alipay's certificate (over the
gateway's key) issued by that CA and kept with it in one file, and the application's
certificate (over the merchant's key); the root bundle also holds a root of another
algorithm, as Alipay's does, which the root SN leaves out. Every name says "throw-away": none of these may reach
production (the offline gateway is refused there anyway).

They are written into ``<INSTANCE_PATH>/alipay/`` under the names Alipay's console gives its
files. Each file is a pure function of the keys (fixed validity, serials derived from the
keys, deterministic RSA signatures), so every process of the shop writes the same bytes and
none can replace another's certificate with a different one.
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from .. import rsa2

#: Valid from before any test clock until long after; fixed, so the files never change.
NOT_BEFORE = datetime(2024, 1, 1, tzinfo=timezone.utc)
NOT_AFTER = datetime(2049, 12, 31, tzinfo=timezone.utc)
ROOT_FILE, ALIPAY_FILE, APP_FILE = (
    "alipayRootCert.crt",
    "alipayCertPublicKey_RSA2.crt",
    "appCertPublicKey.crt",
)


def name(common_name: str, organization: str = "gmall-payment offline Alipay gateway") -> x509.Name:
    """A name as Alipay's CAs write theirs (C, O, OU, CN)."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Certification Authority"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _serial(public_key, subject: x509.Name) -> int:
    """A positive serial of 127 bits, the same for the same key and name."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    digest = hashlib.sha256(der + subject.public_bytes()).digest()
    return int.from_bytes(digest[:16], "big") >> 1 or 1


def issue(
    subject: x509.Name,
    public_key,
    issuer: x509.Certificate | None,
    issuer_key,
    ca: bool = False,
    not_before: datetime = NOT_BEFORE,
    not_after: datetime = NOT_AFTER,
) -> x509.Certificate:
    """A certificate for ``public_key``, signed by ``issuer_key`` (``issuer`` None: self-signed)."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if issuer is None else issuer.subject)
        .public_key(public_key)
        .serial_number(_serial(public_key, subject))
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return builder.sign(
        issuer_key, None if isinstance(issuer_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    )


def pem(*certificates: x509.Certificate) -> bytes:
    """The certificates as one file, a blank line between them as in Alipay's files."""
    return b"\n".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


@dataclass(frozen=True)
class OfflineCertificates:
    """Where the three files are, as the settings ``ALIPAY_*_CERT_FILE`` would name them."""

    root: Path
    alipay: Path
    app: Path


def _write(path: Path, data: bytes) -> Path:
    if not path.exists() or path.read_bytes() != data:
        rsa2.replace_file(path, data)
    return path


def ensure_offline_certificates(folder: Path, app_public_key, alipay_public_key) -> OfflineCertificates:
    """The offline gateway's certificates for these two keys, written into ``folder`` if missing."""
    folder.mkdir(parents=True, exist_ok=True)
    root_key, _ = rsa2.ensure_key_pair(folder, "root_ca")
    class2_key, _ = rsa2.ensure_key_pair(folder, "class2_ca")
    root = issue(name("Offline Alipay Root CA (throw-away)"), root_key.public_key(), None, root_key, ca=True)
    class2 = issue(
        name("Offline Alipay Class 2 CA (throw-away)", "gmall-payment 离线支付宝网关"),
        class2_key.public_key(),
        root,
        root_key,
        ca=True,
    )
    # Alipay's bundle holds roots of other algorithms too (SM2, ECC), which the root SN leaves
    # out: an Ed25519 one here (deterministic, like the RSA signatures), its key from the root's.
    other_key = ed25519.Ed25519PrivateKey.from_private_bytes(hashlib.sha256(root.signature).digest())
    other_root = issue(
        name("Offline Alipay Ed25519 Root CA (throw-away)"), other_key.public_key(), None, other_key, ca=True
    )
    alipay = issue(
        name("Offline Alipay gateway (throw-away)", "支付宝 offline gateway"),
        alipay_public_key,
        class2,
        class2_key,
    )
    app = issue(
        name("Offline merchant application (throw-away)", "gmall-payment shop"),
        app_public_key,
        class2,
        class2_key,
    )
    return OfflineCertificates(
        root=_write(folder / ROOT_FILE, pem(root, other_root)),
        alipay=_write(folder / ALIPAY_FILE, pem(alipay, class2)),
        app=_write(folder / APP_FILE, pem(app)),
    )
