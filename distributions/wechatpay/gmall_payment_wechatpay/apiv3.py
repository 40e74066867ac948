"""WeChat Pay API v3's security, written on ``cryptography``: what each side signs, verifies, decrypts.

- A request is signed (WECHATPAY2-SHA256-RSA2048: RSA PKCS#1 v1.5 over SHA-256) over
  ``METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n``; the ``Authorization`` header carries
  the merchant id, the nonce, the timestamp, the merchant certificate's serial and the signature.
- A response or a notification is signed by WeChat Pay over ``TIMESTAMP\\nNONCE\\nBODY\\n``,
  in the ``Wechatpay-Timestamp``, ``-Nonce``, ``-Signature`` and ``-Serial`` headers; the
  serial names the key: ``PUB_KEY_ID_…`` (public-key mode) or a platform certificate's serial.
- A notification's ``resource`` is AEAD_AES_256_GCM with the APIv3 key, its ``nonce`` and
  ``associated_data``.

wechatpayv3 does the same, but verifies no timestamp (a replayed notification passes), does
not verify error answers, and fetches certificates over the network when it is built; the
distribution's tests check this module against it.
"""

import base64
import binascii
import json
import re
import secrets
import time
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SCHEME = "WECHATPAY2-SHA256-RSA2048"
ALGORITHM = "AEAD_AES_256_GCM"
#: WeChat Pay's own rule: a signed answer or notification older (or newer) than 5 minutes is refused.
TIMESTAMP_TOLERANCE = 300.0
BEIJING = timezone(timedelta(hours=8))
FEN = Decimal("0.01")
_AUTH_FIELD = re.compile(r'(\w+)="([^"]*)"')


class SignatureError(ValueError):
    """A signature, timestamp or ciphertext that does not hold; the message says which part."""


class StaleTimestamp(SignatureError):
    """A genuine signature on a timestamp too far from now: a replay (or a clock far off)."""


def request_message(method: str, path: str, timestamp: str, nonce: str, body: str) -> str:
    """What a request is signed over: ``path`` is the URL's absolute path with its query."""
    return f"{method.upper()}\n{path}\n{timestamp}\n{nonce}\n{body}\n"


def answer_message(timestamp: str, nonce: str, body: str) -> str:
    """What WeChat Pay signs a response or notification over."""
    return f"{timestamp}\n{nonce}\n{body}\n"


def sign(message: str, private_key: rsa.RSAPrivateKey) -> str:
    signature = private_key.sign(message.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def verify(message: str, signature: str, public_key: rsa.RSAPublicKey) -> bool:
    """Whether ``signature`` (base64) signs ``message``; never raises on what a stranger sent."""
    try:
        raw = base64.b64decode(signature or "", validate=True)
        public_key.verify(raw, message.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return bool(raw)


def nonce_str() -> str:
    return secrets.token_hex(16).upper()


def authorization(
    method: str,
    path: str,
    body: str,
    mchid: str,
    serial_no: str,
    private_key: rsa.RSAPrivateKey,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> str:
    """The ``Authorization`` header of a request."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or nonce_str()
    signature = sign(request_message(method, path, stamp, nonce, body), private_key)
    return (
        f'{SCHEME} mchid="{mchid}",nonce_str="{nonce}",signature="{signature}",'
        f'timestamp="{stamp}",serial_no="{serial_no}"'
    )


def parse_authorization(header: str) -> dict[str, str]:
    """The fields of an ``Authorization`` header; SignatureError if it is not WeChat Pay's scheme."""
    scheme, _, rest = (header or "").partition(" ")
    if scheme != SCHEME:
        raise SignatureError(f"Authorization scheme is not {SCHEME}")
    fields = dict(_AUTH_FIELD.findall(rest))
    missing = [
        name for name in ("mchid", "nonce_str", "signature", "timestamp", "serial_no") if not fields.get(name)
    ]
    if missing:
        raise SignatureError("Authorization lacks " + ", ".join(missing))
    return fields


def check_timestamp(value: str, tolerance: float = TIMESTAMP_TOLERANCE, now: float | None = None) -> None:
    """SignatureError unless ``value`` (Unix seconds) is within ``tolerance`` of now (a replay)."""
    try:
        stamp = int(value)
    except (TypeError, ValueError):
        raise SignatureError(f"timestamp {value!r} is not Unix seconds") from None
    drift = abs((time.time() if now is None else now) - stamp)
    if drift > tolerance:
        raise StaleTimestamp(
            f"timestamp {value} is {drift:.0f} s from now (more than {tolerance:g} s: a replay?)"
        )


def signed_headers(
    body: str,
    serial: str,
    private_key: rsa.RSAPrivateKey,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The headers WeChat Pay signs a response or a notification with (the gateway's side)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or nonce_str()
    return {
        "Wechatpay-Timestamp": stamp,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Serial": serial,
        "Wechatpay-Signature": sign(answer_message(stamp, nonce, body), private_key),
        "Wechatpay-Signature-Type": SCHEME,
    }


def verify_headers(
    headers: Mapping[str, str],
    body: str,
    keys: Mapping[str, rsa.RSAPublicKey],
    tolerance: float | None = TIMESTAMP_TOLERANCE,
) -> str:
    """Check WeChat Pay's signature headers over ``body`` with the key its serial names.

    ``keys`` maps serials (``PUB_KEY_ID_…`` or certificates' serials, upper-case hex) to
    public keys: several at once while WeChat Pay rotates. Returns the serial; SignatureError
    says what failed: unknown serial, bad signature, or a timestamp out of ``tolerance`` (None:
    the timestamp's age is not checked, for an operator's replay of a kept notification).
    """

    def header(name):
        return next((value for key, value in headers.items() if key.lower() == name.lower()), "")

    signature_type = header("Wechatpay-Signature-Type")
    if signature_type and signature_type != SCHEME:
        raise SignatureError(f"Wechatpay-Signature-Type {signature_type!r} is not {SCHEME}")
    serial = header("Wechatpay-Serial")
    key = keys.get(serial) or keys.get(serial.upper())
    if key is None:
        raise SignatureError(
            f"Wechatpay-Serial {serial!r} is none of the configured keys ({', '.join(keys)})"
        )
    timestamp, nonce = header("Wechatpay-Timestamp"), header("Wechatpay-Nonce")
    if not verify(answer_message(timestamp, nonce, body), header("Wechatpay-Signature"), key):
        raise SignatureError(f"Wechatpay-Signature does not verify with key {serial}")
    if tolerance is not None:
        check_timestamp(timestamp, tolerance)
    return serial


def decrypt(resource: Mapping, apiv3_key: bytes) -> dict:
    """A notification's ``resource``, decrypted and parsed; SignatureError if it does not open."""
    if resource.get("algorithm") != ALGORITHM:
        raise SignatureError(f"resource algorithm {resource.get('algorithm')!r} is not {ALGORITHM}")
    try:
        data = AESGCM(apiv3_key).decrypt(
            str(resource["nonce"]).encode("utf-8"),
            base64.b64decode(resource["ciphertext"], validate=True),
            str(resource.get("associated_data") or "").encode("utf-8"),
        )
        plain = json.loads(data.decode("utf-8"))
    except (KeyError, TypeError, ValueError, binascii.Error, InvalidTag):
        raise SignatureError("resource does not decrypt with the APIv3 key") from None
    if not isinstance(plain, dict):
        raise SignatureError("resource is not a JSON object")
    return plain


def encrypt(plain: Mapping, apiv3_key: bytes, associated_data: str, original_type: str) -> dict:
    """A ``resource`` as WeChat Pay sends it (the gateway's side)."""
    nonce = secrets.token_hex(6)  # 12 characters, as WeChat Pay's are
    text = json.dumps(plain, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    ciphertext = AESGCM(apiv3_key).encrypt(nonce.encode("utf-8"), text, associated_data.encode("utf-8"))
    return {
        "original_type": original_type,
        "algorithm": ALGORITHM,
        "ciphertext": base64.b64encode(ciphertext).decode(),
        "associated_data": associated_data,
        "nonce": nonce,
    }


def to_fen(amount: Decimal) -> int:
    """Yuan to fen, exactly: ValueError for an amount with a fraction of a fen."""
    amount = Decimal(amount)
    if amount != amount.quantize(FEN):
        raise ValueError(f"{amount} is not a whole number of fen")
    return int(amount * 100)


def from_fen(value) -> Decimal:
    """Fen (an int, as WeChat Pay sends it) to yuan; ValueError for anything else."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"amount {value!r} is not a whole number of fen")
    return (Decimal(value) / 100).quantize(FEN)


def rfc3339(moment: datetime) -> str:
    """``moment`` (naive: the shop's local time) in Beijing time, as WeChat Pay writes times."""
    aware = moment.astimezone() if moment.tzinfo is None else moment
    return aware.astimezone(BEIJING).isoformat(timespec="seconds")


def parse_rfc3339(value: str) -> datetime:
    moment = datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset")
    return moment


def description(text: str, limit: int = 127) -> str:
    """``text`` cut to WeChat Pay's ``description`` limit (127 bytes of UTF-8), never mid-character."""
    data = text.encode("utf-8")[:limit]
    return data.decode("utf-8", "ignore")
