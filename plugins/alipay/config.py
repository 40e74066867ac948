"""Alipay's settings, for the provider and for the offline gateway, read and checked once.

Two modes:

- **configured**: ``ALIPAY_APP_PRIVATE_KEY`` (or ``_FILE``) and ``ALIPAY_PUBLIC_KEY`` (or
  ``_FILE``) are set: the provider talks to Alipay (``ALIPAY_GATEWAY_URL``, production by
  default) with those keys, and ``ALIPAY_APP_ID`` is required. In certificate mode (公钥证书)
  ``ALIPAY_APP_CERT``, ``ALIPAY_PUBLIC_CERT`` and ``ALIPAY_ROOT_CERT`` take the place of
  ``ALIPAY_PUBLIC_KEY`` (see ``certificates``).
- **offline** (the embedded default): none of them is set: the provider uses a merchant key
  pair and the offline gateway's key pair, both generated once in ``<INSTANCE_PATH>/alipay/``,
  and points at the gateway mounted in the shop, which verifies with the merchant's public key
  and signs with its own. A newcomer pays with "支付宝" and no internet. With
  ``ALIPAY_SANDBOX_CERT_MODE`` both sides use certificate mode, with throw-away certificates
  generated there too (``sandbox_certificates``).

A key that cannot be used fails here, at start, with the setting's name and the reason.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa

from ...ports.settings import Setting
from .. import rsa2
from .certificates import CertificateMode
from .sandbox_certificates import ensure_offline_certificates

PRODUCTION_GATEWAY = "https://openapi.alipay.com/gateway.do"
SANDBOX_GATEWAY = "https://openapi-sandbox.dl.alipaydev.com/gateway.do"  # Alipay's own sandbox
#: Where the shop mounts the offline gateway (``gmall_payment_sandbox_apps``).
OFFLINE_PREFIX = "/alipay-sandbox"
OFFLINE_GATEWAY = f"{OFFLINE_PREFIX}/gateway.do"
GATEWAYS = {"production": PRODUCTION_GATEWAY, "sandbox": SANDBOX_GATEWAY, "offline": OFFLINE_GATEWAY}

#: Alipay's product codes: 电脑网站支付 and 手机网站支付 (python-alipay-sdk's wap pay sends
#: QUICK_WAP_PAY, which is not Alipay's: the provider names the product itself).
PAGE_PAY_PRODUCT, WAP_PAY_PRODUCT = "FAST_INSTANT_TRADE_PAY", "QUICK_WAP_WAY"

#: The offline gateway's identities when none is configured (Alipay-shaped: 16 digits, 2088...).
OFFLINE_APP_ID = "2021000000000001"
OFFLINE_SELLER_ID = "2088000000000001"
#: Alipay's waits before each notify attempt: at once, then 4m, 10m, 10m, 1h, 2h, 6h, 15h.
NOTIFY_SCHEDULE = (0, 240, 600, 600, 3600, 7200, 21600, 54000)
CHECKOUT_MODES = ("form", "redirect")
#: Which Alipay product checkout pays with: ``auto`` (手机网站支付 for a phone's or a tablet's
#: browser, by its User-Agent; 电脑网站支付 for a computer), always ``page``, always ``wap``.
PRODUCTS = ("auto", "page", "wap")

#: The settings with a default of their own (docs/settings.md describes the others').
CHECKOUT = Setting("ALIPAY_CHECKOUT", CHECKOUT_MODES[0])
CONFIRM_WITH_QUERY = Setting("ALIPAY_CONFIRM_WITH_QUERY", False)
PRODUCT = Setting("ALIPAY_PRODUCT", PRODUCTS[0])
TIMEOUT = Setting("ALIPAY_TIMEOUT", 15.0, unit="seconds")  # 0: the default
#: The offline gateway divides NOTIFY_SCHEDULE by this: 4 s, 10 s, 10 s, 1 min, 2 min, 6 min, 15 min.
NOTIFY_SPEEDUP = Setting("ALIPAY_SANDBOX_NOTIFY_SPEEDUP", 60.0, positive=True)
TIMESTAMP_TOLERANCE = Setting("ALIPAY_SANDBOX_TIMESTAMP_TOLERANCE", 900.0, unit="seconds")
#: The offline gateway and the offline provider in certificate mode, with generated certificates.
SANDBOX_CERT_MODE = Setting("ALIPAY_SANDBOX_CERT_MODE", False)

#: Certificate mode's files (each inline PEM or ``_FILE``), and what each is.
CERT_SETTINGS = {
    "ALIPAY_APP_CERT": "the application's public key certificate (appCertPublicKey_<APPID>.crt)",
    "ALIPAY_PUBLIC_CERT": "Alipay's public key certificate (alipayCertPublicKey_RSA2.crt)",
    "ALIPAY_ROOT_CERT": "Alipay's root certificate (alipayRootCert.crt)",
}
#: A second Alipay certificate also accepted, while Alipay renews its own.
SECOND_PUBLIC_CERT = "ALIPAY_SECOND_PUBLIC_CERT"
PUBLIC_KEY_SETTINGS = ("ALIPAY_PUBLIC_KEY", "ALIPAY_SECOND_PUBLIC_KEY")
KEY_SETTINGS = ("ALIPAY_APP_PRIVATE_KEY", "ALIPAY_PUBLIC_KEY", *CERT_SETTINGS)


def _key_text(settings: Mapping, name: str) -> tuple[bytes | str, str] | None:
    """The key text of setting ``name`` (inline) or ``name_FILE`` (a path), and where it came from."""
    inline, path = settings.get(name), settings.get(f"{name}_FILE")
    if inline and path:
        raise ValueError(f"set {name} or {name}_FILE, not both")
    if path:
        try:
            return Path(path).read_bytes(), f"{name}_FILE ({path})"
        except OSError as error:
            raise ValueError(f"{name}_FILE: cannot read {path}: {error.strerror}") from None
    if inline:
        # Keys pasted into one environment variable often carry "\n" as two characters.
        return str(inline).replace("\\n", "\n"), name
    return None


def load_setting_key(settings: Mapping, name: str, private: bool = False):
    """The RSA key of setting ``name``/``name_FILE`` (PEM or one-line base64), or None if unset."""
    found = _key_text(settings, name)
    if found is None:
        return None
    text, source = found
    try:
        return rsa2.load_private_key(text) if private else rsa2.load_public_key(text)
    except ValueError as error:
        raise ValueError(f"{source}: {error}") from None


def is_configured(settings: Mapping) -> bool:
    """Whether real keys are configured (else the embedded offline default applies)."""
    return any(settings.get(name) or settings.get(f"{name}_FILE") for name in KEY_SETTINGS)


def _same_key(a, b) -> bool:
    return a.public_numbers() == b.public_numbers()


def certificate_mode(settings: Mapping, app_public_key) -> CertificateMode | None:
    """Certificate mode's files from the settings, checked (``CertificateMode.load``); None
    when none is set (public-key mode). One mode or the other, never a mix."""
    found = {name: _key_text(settings, name) for name in (*CERT_SETTINGS, SECOND_PUBLIC_CERT)}
    if not any(found.values()):
        return None
    for name in PUBLIC_KEY_SETTINGS:
        if _key_text(settings, name):
            raise ValueError(
                f"{name} is set with certificate mode's {', '.join(n for n in found if found[n])}: "
                "an Alipay application uses public keys or certificates, not both; unset one"
            )
    for name, what in CERT_SETTINGS.items():
        if found[name] is None:
            raise ValueError(f"{name} (or _FILE) is needed in certificate mode: {what}")
    alipay = [found[name] for name in ("ALIPAY_PUBLIC_CERT", SECOND_PUBLIC_CERT) if found[name]]
    return CertificateMode.load(app_public_key, found["ALIPAY_APP_CERT"], alipay, found["ALIPAY_ROOT_CERT"])


def offline_certificate_mode(settings: Mapping, app_public_key, alipay_public_key) -> CertificateMode | None:
    """With ALIPAY_SANDBOX_CERT_MODE, the offline gateway's generated certificates for these keys."""
    if not SANDBOX_CERT_MODE.read(settings):
        return None
    files = ensure_offline_certificates(_key_folder(settings), app_public_key, alipay_public_key)

    def read(path):
        return path.read_bytes(), f"the offline gateway's {path}"

    return CertificateMode.load(app_public_key, read(files.app), [read(files.alipay)], read(files.root))


def _public_keys(settings: Mapping, private_key) -> tuple:
    """Public-key mode: ALIPAY_PUBLIC_KEY, and ALIPAY_SECOND_PUBLIC_KEY while rotating."""
    primary = load_setting_key(settings, "ALIPAY_PUBLIC_KEY")
    if primary is None:
        raise ValueError(
            "ALIPAY_PUBLIC_KEY (or _FILE) is needed with ALIPAY_APP_PRIVATE_KEY: "
            "Alipay's public key from the console, which verifies Alipay's notifications "
            "(or, in certificate mode, ALIPAY_APP_CERT, ALIPAY_PUBLIC_CERT and ALIPAY_ROOT_CERT)"
        )
    second = load_setting_key(settings, "ALIPAY_SECOND_PUBLIC_KEY")
    public_keys = (primary,) if second is None else (primary, second)
    for name, key in zip(PUBLIC_KEY_SETTINGS, public_keys, strict=False):
        if _same_key(key, private_key.public_key()):
            raise ValueError(
                f"{name} is the application's own public key; it must be Alipay's "
                "public key (the other key the console shows)"
            )
    return public_keys


def _gateway_url(settings: Mapping, default: str) -> str:
    value = (settings.get("ALIPAY_GATEWAY_URL") or default).strip()
    url = GATEWAYS.get(value, value)
    parts = urlsplit(url)
    if not (url.startswith("/") or (parts.scheme in ("http", "https") and parts.netloc)):
        raise ValueError(
            f"ALIPAY_GATEWAY_URL: {value!r} is neither production, sandbox, offline nor an http(s) URL"
        )
    return url


def _base_url(settings: Mapping, name: str) -> str | None:
    value = settings.get(name)
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{name}: {value!r} is not an absolute http(s) URL")
    return value.rstrip("/")


def _key_folder(settings: Mapping) -> Path:
    instance = settings.get("INSTANCE_PATH")
    if not instance:
        raise ValueError("INSTANCE_PATH is needed to keep the offline Alipay gateway's generated keys")
    return Path(instance) / "alipay"


def merchant_key_pair(settings: Mapping):
    """The merchant's (the shop's) pair: ALIPAY_APP_PRIVATE_KEY, else one generated offline."""
    private_key = load_setting_key(settings, "ALIPAY_APP_PRIVATE_KEY", private=True)
    if private_key is not None:
        return private_key, private_key.public_key()
    return rsa2.ensure_key_pair(_key_folder(settings), "merchant")


def gateway_key_pair(settings: Mapping):
    """The offline gateway's own pair: ALIPAY_SANDBOX_PRIVATE_KEY, else one generated offline."""
    private_key = load_setting_key(settings, "ALIPAY_SANDBOX_PRIVATE_KEY", private=True)
    if private_key is not None:
        return private_key, private_key.public_key()
    return rsa2.ensure_key_pair(_key_folder(settings), "gateway")


@dataclass(frozen=True)
class AlipayConfig:
    """What the provider needs; ``settings`` stays live for PUBLIC_URL (read when calling out)."""

    app_id: str
    private_key: rsa.RSAPrivateKey
    alipay_public_keys: tuple[rsa.RSAPublicKey, ...]
    gateway_url: str
    offline: bool
    seller_id: str | None = None
    notify_base_url: str | None = None
    return_base_url: str | None = None
    confirm_with_query: bool = CONFIRM_WITH_QUERY.default
    checkout: str = CHECKOUT.default
    product: str = PRODUCT.default
    timeout: float = TIMEOUT.default
    settings: Mapping = None
    certificates: CertificateMode | None = None  # None: public-key mode

    @classmethod
    def from_settings(cls, settings: Mapping) -> "AlipayConfig":
        offline = not is_configured(settings)
        if offline:
            private_key, _ = merchant_key_pair(settings)
            public_keys = (gateway_key_pair(settings)[1],)
            certificates = offline_certificate_mode(settings, private_key.public_key(), public_keys[0])
            app_id = settings.get("ALIPAY_APP_ID") or OFFLINE_APP_ID
            seller_id = settings.get("ALIPAY_SELLER_ID") or OFFLINE_SELLER_ID
        else:
            private_key = load_setting_key(settings, "ALIPAY_APP_PRIVATE_KEY", private=True)
            if private_key is None:
                raise ValueError(
                    "ALIPAY_APP_PRIVATE_KEY (or _FILE) is needed with ALIPAY_PUBLIC_KEY (or certificate "
                    "mode's ALIPAY_APP_CERT): the application's private key, which signs our requests"
                )
            certificates = certificate_mode(settings, private_key.public_key())
            public_keys = certificates.public_keys if certificates else _public_keys(settings, private_key)
            app_id = settings.get("ALIPAY_APP_ID")
            if not app_id:
                raise ValueError("ALIPAY_APP_ID is needed with ALIPAY_APP_PRIVATE_KEY (the console's APPID)")
            seller_id = settings.get("ALIPAY_SELLER_ID") or None
        checkout = CHECKOUT.read(settings).strip().lower()
        if checkout not in CHECKOUT_MODES:
            raise ValueError(f"ALIPAY_CHECKOUT: {checkout!r} is not one of {', '.join(CHECKOUT_MODES)}")
        product = PRODUCT.read(settings).strip().lower()
        if product not in PRODUCTS:
            raise ValueError(f"ALIPAY_PRODUCT: {product!r} is not one of {', '.join(PRODUCTS)}")
        return cls(
            app_id=str(app_id),
            private_key=private_key,
            alipay_public_keys=public_keys,
            gateway_url=_gateway_url(settings, "offline" if offline else "production"),
            offline=offline,
            seller_id=str(seller_id) if seller_id else None,
            notify_base_url=_base_url(settings, "ALIPAY_NOTIFY_BASE_URL"),
            return_base_url=_base_url(settings, "ALIPAY_RETURN_BASE_URL"),
            confirm_with_query=CONFIRM_WITH_QUERY.read(settings),
            checkout=checkout,
            product=product,
            timeout=TIMEOUT.read(settings) or TIMEOUT.default,
            settings=settings,
            certificates=certificates,
        )

    def pays_on_phone(self, mobile: bool) -> bool:
        """Whether checkout uses 手机网站支付 (``alipay.trade.wap.pay``) for a browser that is
        ``mobile`` or not, as ALIPAY_PRODUCT says."""
        return self.product == "wap" or (self.product == "auto" and mobile)

    @property
    def serves_offline_gateway(self) -> bool:
        """Whether the provider points at the gateway mounted in the shop itself."""
        return self.gateway_url == OFFLINE_GATEWAY

    def server_gateway_url(self) -> str:
        """The gateway as the server calls it (query, refund, close): always absolute.

        A relative gateway (the one mounted in the shop) is resolved against ``PUBLIC_URL``,
        read now, since the shop's own address may only be known once it is served.
        """
        if not self.gateway_url.startswith("/"):
            return self.gateway_url
        base = (self.settings or {}).get("PUBLIC_URL")
        if not base:
            raise ValueError(
                f"the Alipay gateway is the shop's own {self.gateway_url}: set PUBLIC_URL "
                "(e.g. http://127.0.0.1:5000) so the server can call it"
            )
        return urljoin(base.rstrip("/") + "/", self.gateway_url.lstrip("/"))


@dataclass(frozen=True)
class GatewayConfig:
    """The offline gateway's settings: whom it serves, its keys, its notify schedule."""

    app_id: str
    seller_id: str
    private_key: rsa.RSAPrivateKey
    merchant_public_key: rsa.RSAPublicKey
    schedule: tuple[float, ...]
    timestamp_tolerance: float
    trades_file: Path | None = None  # where it keeps its trades (None: in memory)
    certificates: CertificateMode | None = None  # ALIPAY_SANDBOX_CERT_MODE: its generated ones

    @classmethod
    def from_settings(cls, settings: Mapping) -> "GatewayConfig":
        private_key, _ = gateway_key_pair(settings)
        merchant_public = load_setting_key(settings, "ALIPAY_SANDBOX_MERCHANT_PUBLIC_KEY")
        if merchant_public is None:
            merchant_public = merchant_key_pair(settings)[1]
        speedup = NOTIFY_SPEEDUP.read(settings)  # > 0: 1 is Alipay's real schedule
        certificates = offline_certificate_mode(settings, merchant_public, private_key.public_key())
        return cls(
            app_id=str(settings.get("ALIPAY_APP_ID") or OFFLINE_APP_ID),
            seller_id=str(settings.get("ALIPAY_SELLER_ID") or OFFLINE_SELLER_ID),
            private_key=private_key,
            merchant_public_key=merchant_public,
            schedule=tuple(wait / speedup for wait in NOTIFY_SCHEDULE),
            timestamp_tolerance=TIMESTAMP_TOLERANCE.read(settings),
            trades_file=Path(settings["INSTANCE_PATH"]) / "alipay" / "gateway_trades.sqlite3"
            if settings.get("INSTANCE_PATH")
            else None,
            certificates=certificates,
        )
