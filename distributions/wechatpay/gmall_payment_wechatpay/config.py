"""WeChat Pay's settings, for the provider and the offline gateway, read and checked once.

Two modes, as for Alipay:

- **configured**: ``WECHATPAY_PRIVATE_KEY_FILE`` (the merchant API key, ``apiclient_key.pem``)
  is set: ``WECHATPAY_MCHID``, ``WECHATPAY_APPID``, ``WECHATPAY_CERT_SERIAL_NO``,
  ``WECHATPAY_APIV3_KEY`` and at least one WeChat Pay key are then required: public keys
  (``WECHATPAY_PUBLIC_KEYS="PUB_KEY_ID_…=/path/pub_key.pem,…"``) and/or platform certificates
  (``WECHATPAY_PLATFORM_CERT_FILES="/path/a.pem,…"``, each known by its serial); several at
  once for a rotation.
- **offline** (the embedded default): none is set: key pairs and an APIv3 key are generated
  once in ``<INSTANCE_PATH>/wechatpay/`` and the provider calls the offline gateway mounted
  in the shop under ``/wechatpay-sandbox``. It pays with no money, so PRODUCTION refuses it.

The distribution's settings and their defaults are ``DEFAULTS`` (the shop knows none of them).
"""

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from gmall_payment.plugins import rsa2
from gmall_payment.ports.settings import number

PRODUCTION_API = "https://api.mch.weixin.qq.com"
OFFLINE_PREFIX = "/wechatpay-sandbox"
#: WeChat Pay's notify retries after the first attempt: 15s 15s 30s 3m 10m 20m 30m 30m 30m 60m 3h 3h 3h 6h 6h.
NOTIFY_SCHEDULE = (0, 15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600)
OFFLINE_MCHID = "1900000001"
OFFLINE_APPID = "wx0000000000000001"
OFFLINE_MERCHANT_SERIAL = "0FF11E0000000000000000000000000000000001"
OFFLINE_PUBLIC_KEY_ID = "PUB_KEY_ID_0119000000012026000000000000000001"

DEFAULTS = {
    "WECHATPAY_MCHID": "",  # 商户号; offline: 1900000001
    "WECHATPAY_APPID": "",  # the APPID bound to the merchant; offline: wx0000000000000001
    "WECHATPAY_PRIVATE_KEY_FILE": "",  # apiclient_key.pem; unset: the offline gateway, generated keys
    "WECHATPAY_CERT_SERIAL_NO": "",  # the merchant API certificate's serial (Authorization's serial_no)
    "WECHATPAY_APIV3_KEY": "",  # 32 characters; decrypts notifications' resource
    "WECHATPAY_PUBLIC_KEYS": "",  # PUB_KEY_ID_…=/path/pub_key.pem, comma-separated (public-key mode)
    "WECHATPAY_PLATFORM_CERT_FILES": "",  # platform certificates' PEM files, comma-separated
    "WECHATPAY_API_URL": "",  # empty: https://api.mch.weixin.qq.com, or the offline gateway
    "WECHATPAY_NOTIFY_BASE_URL": "",  # where WeChat Pay reaches /notify/wechatpay; empty: PUBLIC_URL
    "WECHATPAY_TIMEOUT": 15,  # seconds for each call to the API
    "WECHATPAY_SANDBOX_NOTIFY_SPEEDUP": 60,  # the offline gateway divides WeChat's retry series by this
}


def setting(settings: Mapping, name: str):
    value = settings.get(name)
    return DEFAULTS[name] if value is None or value == "" else value


def is_configured(settings: Mapping) -> bool:
    return bool(setting(settings, "WECHATPAY_PRIVATE_KEY_FILE"))


def _folder(settings: Mapping) -> Path:
    instance = settings.get("INSTANCE_PATH")
    if not instance:
        raise ValueError("INSTANCE_PATH is needed to keep the offline WeChat Pay gateway's generated keys")
    return Path(instance) / "wechatpay"


def offline_apiv3_key(settings: Mapping) -> bytes:
    """The offline APIv3 key, made once (32 characters, as WeChat Pay's console takes)."""
    folder = _folder(settings)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "apiv3_key"
    try:
        with path.open("x", encoding="ascii") as out:
            out.write(secrets.token_hex(16))
    except FileExistsError:
        pass
    return path.read_text("ascii").strip().encode("ascii")


def _read(path: str, name: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise ValueError(f"{name}: cannot read {path}: {error.strerror}") from None


def _apiv3_key(value: str) -> bytes:
    key = str(value).encode("utf-8")
    if len(key) != 32:
        raise ValueError(f"WECHATPAY_APIV3_KEY must be 32 bytes (the console's APIv3 key), got {len(key)}")
    return key


def _items(value) -> list[str]:
    items = value.split(",") if isinstance(value, str) else list(value or ())
    return [item.strip() for item in items if item.strip()]


def wechat_keys(settings: Mapping) -> dict[str, rsa.RSAPublicKey]:
    """WeChat Pay's verification keys by serial: public keys by their PUB_KEY_ID, certificates by serial."""
    keys = {}
    for item in _items(setting(settings, "WECHATPAY_PUBLIC_KEYS")):
        key_id, sep, path = item.partition("=")
        if not sep or not key_id.startswith("PUB_KEY_ID_"):
            raise ValueError(f"WECHATPAY_PUBLIC_KEYS: {item!r} is not PUB_KEY_ID_…=/path/pub_key.pem")
        try:
            keys[key_id.strip()] = rsa2.load_public_key(_read(path.strip(), "WECHATPAY_PUBLIC_KEYS"))
        except ValueError as error:
            raise ValueError(f"WECHATPAY_PUBLIC_KEYS ({key_id}): {error}") from None
    for path in _items(setting(settings, "WECHATPAY_PLATFORM_CERT_FILES")):
        try:
            certificate = x509.load_pem_x509_certificate(_read(path, "WECHATPAY_PLATFORM_CERT_FILES"))
        except ValueError as error:
            raise ValueError(
                f"WECHATPAY_PLATFORM_CERT_FILES ({path}): not a PEM certificate: {error}"
            ) from None
        key = certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError(f"WECHATPAY_PLATFORM_CERT_FILES ({path}): not an RSA certificate")
        keys[f"{certificate.serial_number:X}"] = key
    return keys


def _api_url(settings: Mapping, offline: bool) -> str:
    url = str(
        setting(settings, "WECHATPAY_API_URL") or (OFFLINE_PREFIX if offline else PRODUCTION_API)
    ).rstrip("/")
    parts = urlsplit(url)
    if not (url.startswith("/") or (parts.scheme in ("http", "https") and parts.netloc)):
        raise ValueError(f"WECHATPAY_API_URL: {url!r} is neither an http(s) URL nor a path of the shop")
    return url


@dataclass(frozen=True)
class WechatPayConfig:
    """What the provider needs; ``settings`` stays live for PUBLIC_URL (read when calling out)."""

    mchid: str
    appid: str
    private_key: rsa.RSAPrivateKey
    serial_no: str
    apiv3_key: bytes
    wechat_keys: Mapping[str, rsa.RSAPublicKey]
    api_url: str
    offline: bool
    notify_base_url: str | None
    timeout: float
    settings: Mapping

    @classmethod
    def from_settings(cls, settings: Mapping) -> "WechatPayConfig":
        offline = not is_configured(settings)
        if offline and settings.get("PRODUCTION") and not settings.get("STAGING_ALLOW_SANDBOXES"):
            return cls.refusing(settings)
        if offline:
            private_key, _ = rsa2.ensure_key_pair(_folder(settings), "merchant")
            keys = {OFFLINE_PUBLIC_KEY_ID: rsa2.ensure_key_pair(_folder(settings), "gateway")[1]}
            serial_no, apiv3_key = OFFLINE_MERCHANT_SERIAL, offline_apiv3_key(settings)
            mchid = setting(settings, "WECHATPAY_MCHID") or OFFLINE_MCHID
            appid = setting(settings, "WECHATPAY_APPID") or OFFLINE_APPID
        else:
            path = setting(settings, "WECHATPAY_PRIVATE_KEY_FILE")
            try:
                private_key = rsa2.load_private_key(_read(path, "WECHATPAY_PRIVATE_KEY_FILE"))
            except ValueError as error:
                raise ValueError(f"WECHATPAY_PRIVATE_KEY_FILE ({path}): {error}") from None
            for name in (
                "WECHATPAY_MCHID",
                "WECHATPAY_APPID",
                "WECHATPAY_CERT_SERIAL_NO",
                "WECHATPAY_APIV3_KEY",
            ):
                if not setting(settings, name):
                    raise ValueError(f"{name} is needed with WECHATPAY_PRIVATE_KEY_FILE")
            keys = wechat_keys(settings)
            if not keys:
                raise ValueError(
                    "WECHATPAY_PUBLIC_KEYS or WECHATPAY_PLATFORM_CERT_FILES is needed with "
                    "WECHATPAY_PRIVATE_KEY_FILE: WeChat Pay's keys verify its answers and notifications"
                )
            serial_no = str(setting(settings, "WECHATPAY_CERT_SERIAL_NO")).upper()
            apiv3_key = _apiv3_key(setting(settings, "WECHATPAY_APIV3_KEY"))
            mchid, appid = setting(settings, "WECHATPAY_MCHID"), setting(settings, "WECHATPAY_APPID")
        base = setting(settings, "WECHATPAY_NOTIFY_BASE_URL")
        if base and urlsplit(base).scheme not in ("http", "https"):
            raise ValueError(f"WECHATPAY_NOTIFY_BASE_URL: {base!r} is not an absolute http(s) URL")
        return cls(
            mchid=str(mchid),
            appid=str(appid),
            private_key=private_key,
            serial_no=serial_no,
            apiv3_key=apiv3_key,
            wechat_keys=keys,
            api_url=_api_url(settings, offline),
            offline=offline,
            notify_base_url=base.rstrip("/") if base else None,
            timeout=number(setting(settings, "WECHATPAY_TIMEOUT"), "WECHATPAY_TIMEOUT", unit="seconds")
            or DEFAULTS["WECHATPAY_TIMEOUT"],
            settings=settings,
        )

    @classmethod
    def refusing(cls, settings: Mapping) -> "WechatPayConfig":
        """A PRODUCTION shop without keys: nothing generated, nothing to call; the production
        check refuses the start (``offline_setting``)."""
        return cls(
            mchid="",
            appid="",
            private_key=None,
            serial_no="",
            apiv3_key=b"",
            wechat_keys={},
            api_url=PRODUCTION_API,
            offline=True,
            notify_base_url=None,
            timeout=DEFAULTS["WECHATPAY_TIMEOUT"],
            settings=settings,
        )

    @property
    def serves_offline_gateway(self) -> bool:
        return self.api_url == OFFLINE_PREFIX

    def server_api_url(self) -> str:
        """The API as the server calls it: a path of the shop is resolved against PUBLIC_URL, read now."""
        if not self.api_url.startswith("/"):
            return self.api_url
        base = (self.settings or {}).get("PUBLIC_URL")
        if not base:
            raise ValueError(
                f"the WeChat Pay API is the shop's own {self.api_url}: set PUBLIC_URL "
                "(e.g. http://127.0.0.1:5000) so the server can call it"
            )
        return urljoin(base.rstrip("/") + "/", self.api_url.lstrip("/"))


@dataclass(frozen=True)
class GatewayConfig:
    """The offline gateway: whom it serves, its key, the merchant's key, its notify schedule."""

    mchid: str
    appid: str
    private_key: rsa.RSAPrivateKey
    public_key_id: str
    merchant_serial: str
    merchant_public_key: rsa.RSAPublicKey
    apiv3_key: bytes
    schedule: tuple[float, ...]

    @classmethod
    def from_settings(cls, settings: Mapping) -> "GatewayConfig":
        # > 0: 1 is WeChat Pay's real schedule
        speedup = number(
            setting(settings, "WECHATPAY_SANDBOX_NOTIFY_SPEEDUP"),
            "WECHATPAY_SANDBOX_NOTIFY_SPEEDUP",
            positive=True,
        )
        return cls(
            mchid=str(setting(settings, "WECHATPAY_MCHID") or OFFLINE_MCHID),
            appid=str(setting(settings, "WECHATPAY_APPID") or OFFLINE_APPID),
            private_key=rsa2.ensure_key_pair(_folder(settings), "gateway")[0],
            public_key_id=OFFLINE_PUBLIC_KEY_ID,
            merchant_serial=OFFLINE_MERCHANT_SERIAL,
            merchant_public_key=rsa2.ensure_key_pair(_folder(settings), "merchant")[1],
            apiv3_key=offline_apiv3_key(settings),
            schedule=tuple(wait / speedup for wait in NOTIFY_SCHEDULE),
        )
