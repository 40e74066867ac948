"""Alipay's settings, for the provider and for the offline gateway, read and checked once.

Two modes:

- **configured**: ``ALIPAY_APP_PRIVATE_KEY`` (or ``_FILE``) and ``ALIPAY_PUBLIC_KEY`` (or
  ``_FILE``) are set: the provider talks to Alipay (``ALIPAY_GATEWAY_URL``, production by
  default) with those keys, and ``ALIPAY_APP_ID`` is required.
- **offline** (the embedded default): none of them is set: the provider uses a merchant key
  pair and the offline gateway's key pair, both generated once in ``<INSTANCE_PATH>/alipay/``,
  and points at the gateway mounted in the shop, which verifies with the merchant's public key
  and signs with its own. A newcomer pays with "支付宝" and no internet.

A key that cannot be used fails here, at start, with the setting's name and the reason.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa

from .. import signing
from ..sitekit import seconds

PRODUCTION_GATEWAY = "https://openapi.alipay.com/gateway.do"
SANDBOX_GATEWAY = "https://openapi-sandbox.dl.alipaydev.com/gateway.do"  # Alipay's own sandbox
#: Where the shop mounts the offline gateway (``gmall_payment_sandbox_apps``).
OFFLINE_PREFIX = "/alipay-sandbox"
OFFLINE_GATEWAY = f"{OFFLINE_PREFIX}/gateway.do"
GATEWAYS = {"production": PRODUCTION_GATEWAY, "sandbox": SANDBOX_GATEWAY, "offline": OFFLINE_GATEWAY}

#: The offline gateway's identities when none is configured (Alipay-shaped: 16 digits, 2088...).
OFFLINE_APP_ID = "2021000000000001"
OFFLINE_SELLER_ID = "2088000000000001"
#: Alipay's waits before each notify attempt: at once, then 4m, 10m, 10m, 1h, 2h, 6h, 15h.
NOTIFY_SCHEDULE = (0, 240, 600, 600, 3600, 7200, 21600, 54000)
DEFAULT_SPEEDUP = 60.0  # offline: 4 s, 10 s, 10 s, 1 min, 2 min, 6 min, 15 min
DEFAULT_TIMESTAMP_TOLERANCE = 900.0
CHECKOUT_MODES = ("form", "redirect")

KEY_SETTINGS = ("ALIPAY_APP_PRIVATE_KEY", "ALIPAY_PUBLIC_KEY")


def _truthy(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


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
        return signing.load_private_key(text) if private else signing.load_public_key(text)
    except ValueError as error:
        raise ValueError(f"{source}: {error}") from None


def is_configured(settings: Mapping) -> bool:
    """Whether real keys are configured (else the embedded offline default applies)."""
    return any(settings.get(name) or settings.get(f"{name}_FILE") for name in KEY_SETTINGS)


def _same_key(a, b) -> bool:
    return a.public_numbers() == b.public_numbers()


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
    return signing.ensure_key_pair(_key_folder(settings), "merchant")


def gateway_key_pair(settings: Mapping):
    """The offline gateway's own pair: ALIPAY_SANDBOX_PRIVATE_KEY, else one generated offline."""
    private_key = load_setting_key(settings, "ALIPAY_SANDBOX_PRIVATE_KEY", private=True)
    if private_key is not None:
        return private_key, private_key.public_key()
    return signing.ensure_key_pair(_key_folder(settings), "gateway")


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
    confirm_with_query: bool = False
    checkout: str = "form"
    timeout: float = 15.0
    settings: Mapping = None

    @classmethod
    def from_settings(cls, settings: Mapping) -> "AlipayConfig":
        offline = not is_configured(settings)
        if offline:
            private_key, _ = merchant_key_pair(settings)
            public_keys = (gateway_key_pair(settings)[1],)
            app_id = settings.get("ALIPAY_APP_ID") or OFFLINE_APP_ID
            seller_id = settings.get("ALIPAY_SELLER_ID") or OFFLINE_SELLER_ID
        else:
            private_key = load_setting_key(settings, "ALIPAY_APP_PRIVATE_KEY", private=True)
            primary = load_setting_key(settings, "ALIPAY_PUBLIC_KEY")
            if private_key is None:
                raise ValueError("ALIPAY_APP_PRIVATE_KEY (or _FILE) is needed with ALIPAY_PUBLIC_KEY: "
                                 "the application's private key, which signs our requests")
            if primary is None:
                raise ValueError("ALIPAY_PUBLIC_KEY (or _FILE) is needed with ALIPAY_APP_PRIVATE_KEY: "
                                 "Alipay's public key from the console, which verifies Alipay's notifications")
            second = load_setting_key(settings, "ALIPAY_SECOND_PUBLIC_KEY")
            public_keys = (primary,) if second is None else (primary, second)
            for name, key in zip(("ALIPAY_PUBLIC_KEY", "ALIPAY_SECOND_PUBLIC_KEY"), public_keys, strict=False):
                if _same_key(key, private_key.public_key()):
                    raise ValueError(f"{name} is the application's own public key; it must be Alipay's "
                                     "public key (the other key the console shows)")
            app_id = settings.get("ALIPAY_APP_ID")
            if not app_id:
                raise ValueError("ALIPAY_APP_ID is needed with ALIPAY_APP_PRIVATE_KEY (the console's APPID)")
            seller_id = settings.get("ALIPAY_SELLER_ID") or None
        checkout = (settings.get("ALIPAY_CHECKOUT") or "form").strip().lower()
        if checkout not in CHECKOUT_MODES:
            raise ValueError(f"ALIPAY_CHECKOUT: {checkout!r} is not one of {', '.join(CHECKOUT_MODES)}")
        timeout = seconds(settings.get("ALIPAY_TIMEOUT", 15), "ALIPAY_TIMEOUT")
        return cls(
            app_id=str(app_id),
            private_key=private_key,
            alipay_public_keys=public_keys,
            gateway_url=_gateway_url(settings, "offline" if offline else "production"),
            offline=offline,
            seller_id=str(seller_id) if seller_id else None,
            notify_base_url=_base_url(settings, "ALIPAY_NOTIFY_BASE_URL"),
            return_base_url=_base_url(settings, "ALIPAY_RETURN_BASE_URL"),
            confirm_with_query=_truthy(settings.get("ALIPAY_CONFIRM_WITH_QUERY", False)),
            checkout=checkout,
            timeout=timeout or 15.0,
            settings=settings,
        )

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

    @classmethod
    def from_settings(cls, settings: Mapping) -> "GatewayConfig":
        private_key, _ = gateway_key_pair(settings)
        merchant_public = load_setting_key(settings, "ALIPAY_SANDBOX_MERCHANT_PUBLIC_KEY")
        if merchant_public is None:
            merchant_public = merchant_key_pair(settings)[1]
        speedup = seconds(settings.get("ALIPAY_SANDBOX_NOTIFY_SPEEDUP", DEFAULT_SPEEDUP),
                          "ALIPAY_SANDBOX_NOTIFY_SPEEDUP")
        if speedup <= 0:
            raise ValueError("ALIPAY_SANDBOX_NOTIFY_SPEEDUP must be > 0 (1 is Alipay's real schedule)")
        return cls(
            app_id=str(settings.get("ALIPAY_APP_ID") or OFFLINE_APP_ID),
            seller_id=str(settings.get("ALIPAY_SELLER_ID") or OFFLINE_SELLER_ID),
            private_key=private_key,
            merchant_public_key=merchant_public,
            schedule=tuple(wait / speedup for wait in NOTIFY_SCHEDULE),
            timestamp_tolerance=seconds(
                settings.get("ALIPAY_SANDBOX_TIMESTAMP_TOLERANCE", DEFAULT_TIMESTAMP_TOLERANCE),
                "ALIPAY_SANDBOX_TIMESTAMP_TOLERANCE",
            ),
        )
