"""Alipay's certificate mode (公钥证书): the serial numbers requests carry, and the certificates
responses and notifications are verified with.

In this mode the console gives three files instead of Alipay's public key: the application's
public key certificate (``appCertPublicKey_<APPID>.crt``), Alipay's public key certificate
(``alipayCertPublicKey_RSA2.crt``: Alipay's certificate, then the CA that issued it) and
Alipay's root certificates (``alipayRootCert.crt``). Every request carries ``app_cert_sn`` and
``alipay_root_cert_sn``; every response names the certificate it is signed under
(``alipay_cert_sn``), and is verified with that certificate's key only.

A certificate's SN is computed as Alipay's own SDKs compute it (``AntCertificationUtil`` in
the Java SDK): the MD5, in hex, of the issuer's name as Java's
``X500Principal.getName()`` writes it (RFC 2253: the RDNs last to first, joined with ``,``)
followed by the serial number in decimal. The root's SN joins, with ``_``, the SNs of the
bundle's certificates signed with RSA (PKCS #1 OIDs, ``1.2.840.113549.1.1.*``); its SM2 and
ECC roots are left out.

python-alipay-sdk's ``DCAliPay`` is not used: it writes every issuer as
``CN=..,OU=..,O=..,C=..`` whatever the name holds (an issuer with other attributes gets a
wrong SN), cuts the root bundle at blank lines, checks no certificate, and verifies every
response with the one key of one certificate, so none can be renewed. Its ``AliPay`` base,
corrected in ``client``, is ours too.

``CertificateMode.load`` checks everything once, at start: each file parses, the application's
certificate holds the application's public key, each Alipay certificate is RSA and chains to
a root of the bundle, and every certificate on the way is valid now. A ValueError names the
setting at fault.
"""

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from alipay.exceptions import AliPayValidationError
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID
from OpenSSL import crypto

from .client import AlipayClient

#: Signature algorithms Alipay's SDKs count as RSA: sha1WithRSA (.5), sha256WithRSA (.11)...
RSA_SIGNATURE_OIDS = "1.2.840.113549.1.1."
#: The attribute types Java writes by keyword in RFC 2253 names; others as OID=#DER.
RFC2253_KEYWORDS = {
    NameOID.COMMON_NAME: "CN",
    NameOID.COUNTRY_NAME: "C",
    NameOID.LOCALITY_NAME: "L",
    NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.STREET_ADDRESS: "STREET",
    NameOID.DOMAIN_COMPONENT: "DC",
    NameOID.USER_ID: "UID",
}
#: How each string type's value is encoded in DER.
_ENCODINGS = {
    _ASN1Type.UTF8String: "utf-8",
    _ASN1Type.PrintableString: "ascii",
    _ASN1Type.T61String: "latin-1",
    _ASN1Type.IA5String: "ascii",
    _ASN1Type.BMPString: "utf-16-be",
    _ASN1Type.UniversalString: "utf-32-be",
    _ASN1Type.NumericString: "ascii",
}
#: The string types Java writes as text (the others it writes as #DER).
_TEXT_TYPES = frozenset(
    {
        _ASN1Type.UTF8String,
        _ASN1Type.PrintableString,
        _ASN1Type.T61String,
        _ASN1Type.IA5String,
        _ASN1Type.BMPString,
    }
)
_ESCAPED = ',=+<>#;"\\'
_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


def _der(attribute: x509.NameAttribute) -> bytes:
    """The DER encoding (tag, length, value) of the attribute's value."""
    value = attribute.value
    data = value if isinstance(value, bytes) else value.encode(_ENCODINGS.get(attribute._type, "utf-8"))
    size = len(data)
    if size < 0x80:
        length = bytes([size])
    else:  # the long form: how many bytes the length takes, then the length
        raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([attribute._type.value]) + length + data


def _escaped(text: str) -> str:
    """A value as Java's RFC 2253 writer escapes it: specials anywhere, spaces at either end."""
    escaped = "".join("\\00" if c == "\0" else f"\\{c}" if c in _ESCAPED else c for c in text)
    body = escaped.strip(" \r")
    lead = len(escaped) - len(escaped.lstrip(" \r")) if body else len(escaped)
    tail = escaped[lead + len(body) :]
    return "".join(f"\\{c}" for c in escaped[:lead]) + body + "".join(f"\\{c}" for c in tail)


def _attribute(attribute: x509.NameAttribute) -> str:
    keyword = RFC2253_KEYWORDS.get(attribute.oid)
    if keyword is None or attribute._type not in _TEXT_TYPES:
        return f"{keyword or attribute.oid.dotted_string}=#{_der(attribute).hex()}"
    return f"{keyword}={_escaped(attribute.value)}"


def java_name(name: x509.Name) -> str:
    """``name`` as Java's ``X500Principal.getName()`` writes it (RFC 2253), which Alipay hashes."""
    return ",".join("+".join(_attribute(a) for a in rdn) for rdn in reversed(name.rdns))


def cert_sn(certificate: x509.Certificate) -> str:
    """Alipay's SN of ``certificate``: md5 hex of the issuer's name and the decimal serial number."""
    text = java_name(certificate.issuer) + str(certificate.serial_number)
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def root_cert_sn(roots: Iterable[x509.Certificate]) -> str:
    """Alipay's SN of a root bundle: the SNs of its RSA-signed certificates, joined with ``_``."""
    return "_".join(
        cert_sn(root)
        for root in roots
        if root.signature_algorithm_oid.dotted_string.startswith(RSA_SIGNATURE_OIDS)
    )


def _other_algorithm(block: bytes) -> bool:
    """Whether OpenSSL (through pyOpenSSL) reads ``block`` as a certificate signed otherwise than
    with RSA, one cryptography cannot read (Alipay's SM2 root)."""
    try:
        algorithm = crypto.load_certificate(crypto.FILETYPE_PEM, block).get_signature_algorithm()
    except (crypto.Error, ValueError):
        return False
    return b"RSA" not in algorithm.upper()


def read_certificates(text: str | bytes, source: str, roots: bool = False) -> list[x509.Certificate]:
    """The PEM certificates in ``text``, in their order; ValueError naming ``source`` when there
    is none or one cannot be read. A root bundle (``roots``) may hold certificates of
    algorithms cryptography does not know (SM2): they are left out, as the root SN leaves them."""
    data = text.encode("ascii", "replace") if isinstance(text, str) else bytes(text)
    certificates = []
    for block in _PEM.findall(data):
        try:
            certificates.append(x509.load_pem_x509_certificate(block))
        except ValueError as error:
            if not (roots and _other_algorithm(block)):
                raise ValueError(f"{source}: not a usable certificate: {error}") from None
    if not certificates:
        raise ValueError(f"{source}: no PEM certificate (-----BEGIN CERTIFICATE-----) this shop can read")
    return certificates


def _check_valid(certificate: x509.Certificate, source: str, now: datetime) -> None:
    if now < certificate.not_valid_before_utc:
        raise ValueError(
            f"{source}: {certificate.subject.rfc4514_string()} is not valid before "
            f"{certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
        )
    if now > certificate.not_valid_after_utc:
        raise ValueError(
            f"{source}: {certificate.subject.rfc4514_string()} expired on "
            f"{certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
        )


def _issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _check_chain(
    chain: Sequence[x509.Certificate], roots: Sequence[x509.Certificate], source: str, now
) -> None:
    """The first certificate chains, through the others of its file, to one of ``roots``; each
    on the way (the root too) is valid ``now``. As Alipay's ``AntCertificationUtil.isTrusted``."""
    current, seen = chain[0], []
    while True:
        _check_valid(current, source, now)
        root = next((r for r in roots if _issued_by(current, r)), None)
        if root is not None:
            _check_valid(root, f"{source}: its root", now)
            return
        seen.append(current)
        issuer = next((c for c in chain if c not in seen and _issued_by(current, c)), None)
        if issuer is None:
            raise ValueError(
                f"{source}: {current.subject.rfc4514_string()} is not issued under ALIPAY_ROOT_CERT "
                f"(issuer {current.issuer.rfc4514_string()} is neither a root there nor in the file)"
            )
        current = issuer


@dataclass(frozen=True)
class AlipayCertificate:
    """One of Alipay's public key certificates: its SN (what responses name) and its key."""

    sn: str
    public_key: rsa.RSAPublicKey
    source: str


@dataclass(frozen=True)
class CertificateMode:
    """What certificate mode needs at run time, checked once: the SNs requests carry and the
    Alipay certificates (several during a rotation, the first the current one) by SN."""

    app_cert_sn: str
    alipay_root_cert_sn: str
    alipay_certificates: tuple[AlipayCertificate, ...]

    @classmethod
    def load(
        cls,
        app_public_key: rsa.RSAPublicKey,
        app_cert: tuple[str | bytes, str],
        alipay_certs: Sequence[tuple[str | bytes, str]],
        root_cert: tuple[str | bytes, str],
    ) -> "CertificateMode":
        """From each file's text and where it came from (a setting's name, or ``NAME_FILE (path)``)."""
        now = datetime.now(timezone.utc)
        roots = read_certificates(*root_cert, roots=True)
        root_sn = root_cert_sn(roots)
        if not root_sn:
            raise ValueError(f"{root_cert[1]}: no RSA root certificate (Alipay's root bundle has two)")
        app = read_certificates(*app_cert)[0]
        _check_valid(app, app_cert[1], now)
        if not _same_key(_rsa_key(app, app_cert[1]), app_public_key):
            raise ValueError(
                f"{app_cert[1]}: the certificate's public key is not the one of ALIPAY_APP_PRIVATE_KEY "
                "(the console issues the certificate for the key pair you uploaded)"
            )
        certificates = []
        for text, source in alipay_certs:
            chain = read_certificates(text, source)
            key = _rsa_key(chain[0], source)
            if _same_key(key, app_public_key):
                raise ValueError(f"{source} is the application's own certificate; it must be Alipay's")
            _check_chain(chain, roots, source, now)
            certificates.append(AlipayCertificate(cert_sn(chain[0]), key, source))
        return cls(cert_sn(app), root_sn, tuple(certificates))

    @property
    def public_keys(self) -> tuple[rsa.RSAPublicKey, ...]:
        """Every Alipay certificate's key: a notification names no certificate."""
        return tuple(certificate.public_key for certificate in self.alipay_certificates)

    @property
    def request_fields(self) -> dict[str, str]:
        return {"app_cert_sn": self.app_cert_sn, "alipay_root_cert_sn": self.alipay_root_cert_sn}

    def signer(self, sn: str | None) -> rsa.RSAPublicKey:
        """The key of the Alipay certificate ``sn`` (None: the current one, as Alipay's SDK does
        for an answer that names none); UnknownCertificate when it is none of ours."""
        if not sn:
            return self.alipay_certificates[0].public_key
        for certificate in self.alipay_certificates:
            if certificate.sn == sn:
                return certificate.public_key
        raise UnknownCertificate(sn, self.alipay_certificates)


class UnknownCertificate(AliPayValidationError):
    """A response signed under an Alipay certificate the shop was not given."""

    def __init__(self, sn: str, known: Iterable[AlipayCertificate]):
        super().__init__(
            f"the response is signed under Alipay certificate {sn}, not one of "
            + ", ".join(f"{c.sn} ({c.source})" for c in known)
            + ": if Alipay renewed its certificate, download it from the console into ALIPAY_PUBLIC_CERT "
            "(the old one to ALIPAY_SECOND_PUBLIC_CERT)"
        )


def _same_key(a, b) -> bool:
    return a.public_numbers() == b.public_numbers()


def _rsa_key(certificate: x509.Certificate, source: str) -> rsa.RSAPublicKey:
    """The certificate's RSA key: RSA2 signs and verifies with nothing else."""
    try:
        key = certificate.public_key()
    except (UnsupportedAlgorithm, ValueError):
        key = None
    if not isinstance(key, rsa.RSAPublicKey):
        algorithm = certificate.public_key_algorithm_oid.dotted_string
        raise ValueError(f"{source}: not an RSA certificate (its key is {algorithm}); RSA2 needs RSA")
    return key


class CertificateClient(AlipayClient):
    """The client in certificate mode: requests carry the two SNs, a response is verified with the
    key of the Alipay certificate it names."""

    def __init__(self, app_id, private_key, mode: CertificateMode, gateway, timeout=15.0):
        super().__init__(app_id, private_key, mode.public_keys, gateway, timeout)
        self.mode = mode

    def build_body(self, method, biz_content=None, **kwargs):
        return {**super().build_body(method, biz_content, **kwargs), **self.mode.request_fields}

    def response_keys(self, response: Mapping) -> tuple[rsa.RSAPublicKey, ...]:
        return (self.mode.signer(response.get("alipay_cert_sn")),)
