"""RSA2 parameter signing as Alipay defines it, shared by the providers that speak its protocol.

A request or notification is signed over its canonical string (see ``canonical_string``) with
RSA PKCS#1 v1.5 and SHA-256 ("RSA2"); the signature travels base64-encoded in ``sign``.
"""

import base64
import binascii
import functools
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

#: Fields left out of what a notification (or a return) is signed over: Alipay's notify rule.
UNSIGNED_FIELDS = frozenset({"sign", "sign_type"})
#: Fields left out of what a request to the gateway is signed over: there ``sign_type`` counts.
REQUEST_UNSIGNED_FIELDS = frozenset({"sign"})
KEY_SIZE = 2048


def canonical_string(params: Mapping, unsigned: frozenset = UNSIGNED_FIELDS) -> str:
    """``k1=v1&k2=v2`` over the non-empty fields not in ``unsigned``, sorted by key, values as given.

    Values are used decoded and unescaped, exactly as Alipay's verifiers do; empty values are
    left out because Alipay leaves them out when it signs. ``unsigned`` is
    ``UNSIGNED_FIELDS`` for notifications, ``REQUEST_UNSIGNED_FIELDS`` for requests.
    """
    return "&".join(
        f"{key}={value}"
        for key, value in sorted(params.items())
        if key not in unsigned and value is not None and value != ""
    )


def sign(params: Mapping, private_key: rsa.RSAPrivateKey, unsigned: frozenset = UNSIGNED_FIELDS) -> str:
    """The base64 RSA2 signature of ``params``, for their ``sign`` field."""
    return sign_text(canonical_string(params, unsigned), private_key)


def sign_text(message: str, private_key: rsa.RSAPrivateKey) -> str:
    """The base64 RSA2 signature of ``message`` (e.g. the JSON text of a gateway response)."""
    signature = private_key.sign(message.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def verify(
    params: Mapping,
    signature: str | None,
    public_keys: rsa.RSAPublicKey | Iterable[rsa.RSAPublicKey],
    unsigned: frozenset = UNSIGNED_FIELDS,
) -> bool:
    """Whether ``signature`` signs ``params`` under one of ``public_keys``.

    Several keys let a provider rotate its key pair without rejecting notifications signed
    with the old one. Anything that is not a valid signature is ``False``, never an exception,
    since the input comes from whoever posted to our callback.
    """
    return verify_text(canonical_string(params, unsigned), signature, public_keys)


def verify_text(
    message: str,
    signature: str | None,
    public_keys: rsa.RSAPublicKey | Iterable[rsa.RSAPublicKey],
) -> bool:
    """Whether ``signature`` (base64) signs ``message`` under one of ``public_keys``."""
    keys = (public_keys,) if isinstance(public_keys, rsa.RSAPublicKey) else tuple(public_keys)
    try:
        raw = base64.b64decode(signature or "", validate=True)
    except (binascii.Error, ValueError, TypeError):
        return False
    if not raw:
        return False
    data = message.encode("utf-8")
    for key in keys:
        try:
            key.verify(raw, data, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            continue
        return True
    return False


def _key_bytes(text: str | bytes, what: str) -> tuple[bytes, bool]:
    """The key's bytes and whether they are PEM; a bare base64 body is decoded to DER."""
    data = text.encode("ascii", "replace") if isinstance(text, str) else bytes(text)
    data = data.strip()
    if data.startswith(b"-----BEGIN"):
        return data, True
    try:
        der = base64.b64decode(b"".join(data.split()), validate=True)
    except binascii.Error:
        der = b""
    if not der:
        raise ValueError(f"not an RSA {what} key: expected PEM or the one-line base64 key body")
    return der, False


def _require_rsa(key, kind, what: str):
    if not isinstance(key, kind):
        raise ValueError(f"not an RSA {what} key: got {type(key).__name__}")
    return key


def load_private_key(text: str | bytes) -> rsa.RSAPrivateKey:
    """An unencrypted RSA private key from PEM (PKCS#1 or PKCS#8) or its bare base64 body."""
    return _parse_private_key(*_key_bytes(text, "private"))


@functools.lru_cache(maxsize=16)
def _parse_private_key(data: bytes, pem: bool) -> rsa.RSAPrivateKey:
    """Parsed once per process: the checks cryptography runs on an RSA private key take ~50 ms,
    and making an app loads each of its keys several times (provider, sandbox, gateway)."""
    loader = serialization.load_pem_private_key if pem else serialization.load_der_private_key
    try:
        key = loader(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise ValueError(f"not a usable RSA private key: {error}") from None
    return _require_rsa(key, rsa.RSAPrivateKey, "private")


def load_public_key(text: str | bytes) -> rsa.RSAPublicKey:
    """An RSA public key from PEM or the base64 body Alipay's console shows (``MIIBIjAN...``)."""
    data, pem = _key_bytes(text, "public")
    loader = serialization.load_pem_public_key if pem else serialization.load_der_public_key
    try:
        key = loader(data)
    except (ValueError, UnsupportedAlgorithm) as error:
        raise ValueError(f"not a usable RSA public key: {error}") from None
    return _require_rsa(key, rsa.RSAPublicKey, "public")


def generate_key_pair() -> tuple[rsa.RSAPrivateKey, rsa.RSAPublicKey]:
    """A fresh 2048-bit RSA pair, the size Alipay asks for."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
    return private_key, private_key.public_key()


def private_pem(private_key: rsa.RSAPrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM, the form ``load_private_key`` and Alipay's tools read."""
    return private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_pem(public_key: rsa.RSAPublicKey) -> bytes:
    """SubjectPublicKeyInfo PEM; its base64 body is what Alipay's console shows."""
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _write_temp(folder: Path, stem: str, data: bytes) -> Path:
    """A complete file in ``folder`` under a unique temporary name (mode 0600)."""
    fd, name = tempfile.mkstemp(dir=folder, prefix=f".{stem}-", suffix=".tmp")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    return Path(name)


def _create_once(path: Path, data: bytes) -> None:
    """Publish ``data`` at ``path`` unless a file is already there.

    The file is written in full under a temporary name and then hard-linked into place: the
    link either appears whole or fails with ``FileExistsError``, so a reader never sees half
    a key and two racing writers never replace each other's key (unlike ``os.replace``).
    """
    temp = _write_temp(path.parent, path.stem, data)
    try:
        os.link(temp, path)
    except FileExistsError:
        pass  # another writer published first: its key is the key
    finally:
        temp.unlink()


def ensure_key_pair(folder: str | os.PathLike, stem: str) -> tuple[rsa.RSAPrivateKey, rsa.RSAPublicKey]:
    """The pair kept as ``<stem>_private.pem`` and ``<stem>_public.pem`` in ``folder``.

    The first caller generates it; concurrent first callers, threads or processes, all end
    up with the one private key that was published first. The public file is derived from
    that private key (and rewritten if it does not match), so the two never disagree.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    private_path = folder / f"{stem}_private.pem"
    if not private_path.exists():
        _create_once(private_path, private_pem(generate_key_pair()[0]))
    private_key = load_private_key(private_path.read_bytes())
    public_key = private_key.public_key()
    public_path = folder / f"{stem}_public.pem"
    expected = public_pem(public_key)
    if not public_path.exists() or public_path.read_bytes() != expected:
        replace_file(public_path, expected)
    return private_key, public_key


def replace_file(path: Path, data: bytes) -> None:
    """``path`` now holds ``data`` (mode 0644), replaced whole: a reader sees the old or the new."""
    temp = _write_temp(path.parent, path.stem, data)
    temp.chmod(0o644)
    os.replace(temp, path)


def public_key_base64(public_key: rsa.RSAPublicKey) -> str:
    """The one-line base64 body of the public key, the form Alipay's console shows and accepts."""
    return "".join(public_pem(public_key).decode("ascii").splitlines()[1:-1])
