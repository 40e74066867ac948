"""What mockpay's two sides share: the shop-side provider and the simulated provider site.

Both are built from the same settings and so find the same two key pairs: the sandbox signs
its notifications and answers with its private key, which the provider verifies with the
public one; the shop signs its requests to the sandbox's API with the merchant's private key,
which the sandbox verifies with the merchant's public one.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from urllib.parse import urljoin, urlsplit, urlunsplit

from ...ports.settings import Setting
from .. import rsa2
from ..sandbox_site import parse_schedule

#: Where the web application mounts the sandbox (``gmall_payment_sandbox_apps``).
SANDBOX_PREFIX = "/mockpay"
#: The settings with a default of their own (docs/settings.md describes the others').
APP_ID = Setting("MOCKPAY_APP_ID", "mockpay-sandbox")
CASHIER_URL = Setting("MOCKPAY_CASHIER_URL", f"{SANDBOX_PREFIX}/cashier")
NOTIFY_SCHEDULE = Setting("MOCKPAY_NOTIFY_SCHEDULE", (0.0, 1.0, 2.0, 5.0, 10.0, 30.0))  # or "0,1,2"
LATE_SECONDS = Setting("MOCKPAY_LATE_SECONDS", 5.0)
TIMEOUT = Setting("MOCKPAY_TIMEOUT", 10.0, unit="seconds")  # 0: the default
#: Seconds a request's ``timestamp`` may be from the sandbox's clock (Alipay's gateway: 15 min).
TIMESTAMP_TOLERANCE = 900


@dataclass(frozen=True)
class MockpayConfig:
    """mockpay's settings, read once; the key pair is loaded (or generated) on first use."""

    app_id: str
    cashier_url: str
    notify_schedule: tuple[float, ...]
    late_seconds: float
    public_key_file: str | None
    private_key_file: str | None
    instance_path: str | None
    merchant_public_key_file: str | None = None
    merchant_private_key_file: str | None = None
    api_url: str = ""
    timeout: float = TIMEOUT.default
    settings: Mapping = field(default=None, compare=False, repr=False)  # live, for PUBLIC_URL

    @classmethod
    def from_settings(cls, settings: Mapping) -> "MockpayConfig":
        cashier_url = CASHIER_URL.read(settings)
        return cls(
            app_id=APP_ID.read(settings),
            cashier_url=cashier_url,
            api_url=settings.get("MOCKPAY_API_URL") or _beside(cashier_url, "api"),
            timeout=TIMEOUT.read(settings) or TIMEOUT.default,
            settings=settings,
            notify_schedule=parse_schedule(NOTIFY_SCHEDULE.read(settings), NOTIFY_SCHEDULE.key),
            late_seconds=LATE_SECONDS.read(settings),
            public_key_file=settings.get("MOCKPAY_PUBLIC_KEY_FILE") or None,
            private_key_file=settings.get("MOCKPAY_PRIVATE_KEY_FILE") or None,
            merchant_public_key_file=settings.get("MOCKPAY_MERCHANT_PUBLIC_KEY_FILE") or None,
            merchant_private_key_file=settings.get("MOCKPAY_MERCHANT_PRIVATE_KEY_FILE") or None,
            instance_path=settings.get("INSTANCE_PATH") or None,
        )

    def __post_init__(self):
        """Refuse key settings that cannot work now, rather than at the first payment.

        Both files of a pair or neither: one without the other would make one side sign with a
        key the other cannot verify.
        """
        for prefix, public, private in (
            ("MOCKPAY_", self.public_key_file, self.private_key_file),
            ("MOCKPAY_MERCHANT_", self.merchant_public_key_file, self.merchant_private_key_file),
        ):
            if bool(public) != bool(private):
                raise ValueError(f"set both {prefix}PUBLIC_KEY_FILE and {prefix}PRIVATE_KEY_FILE, or neither")
            if not public and not self.instance_path:
                raise ValueError(f"INSTANCE_PATH is needed to keep mockpay's generated key pair ({prefix}*)")

    @property
    def query_schedule(self) -> tuple[float, ...]:
        """The waits of the notify retries after the first attempt: reconciliation asks then."""
        return self.notify_schedule[1:]

    def server_api_url(self) -> str:
        """The sandbox's API as the shop's server calls it: a relative URL (the sandbox mounted
        in the shop) is resolved against ``PUBLIC_URL``, read now."""
        if urlsplit(self.api_url).netloc:
            return self.api_url
        base = (self.settings or {}).get("PUBLIC_URL")
        if not base:
            raise ValueError(
                f"mockpay's API is the shop's own {self.api_url}: set PUBLIC_URL "
                "(e.g. http://127.0.0.1:5000) so the server can call it"
            )
        return urljoin(base.rstrip("/") + "/", self.api_url.lstrip("/"))

    @property
    def trades_file(self) -> Path | None:
        """Where the sandbox keeps its trades: the instance folder (None: in memory)."""
        return Path(self.instance_path) / "mockpay" / "trades.sqlite3" if self.instance_path else None

    @property
    def public_url(self) -> str:
        """The shop's PUBLIC_URL, read now ("" when unset)."""
        return (self.settings or {}).get("PUBLIC_URL") or ""

    @cached_property
    def key_pair(self):
        """The sandbox's (private, public): configured files, else generated in the instance folder."""
        return self._key_pair(self.private_key_file, self.public_key_file, "mockpay", "MOCKPAY_")

    @cached_property
    def merchant_key_pair(self):
        """The shop's (private, public), for its requests to the sandbox: files, else generated."""
        return self._key_pair(
            self.merchant_private_key_file, self.merchant_public_key_file, "merchant", "MOCKPAY_MERCHANT_"
        )

    def _key_pair(self, private_file, public_file, stem: str, prefix: str):
        if not private_file:
            return rsa2.ensure_key_pair(Path(self.instance_path) / "mockpay", stem)
        private_key = rsa2.load_private_key(Path(private_file).read_bytes())
        public_key = rsa2.load_public_key(Path(public_file).read_bytes())
        if private_key.public_key().public_numbers() != public_key.public_numbers():
            raise ValueError(f"{prefix}PUBLIC_KEY_FILE does not match {prefix}PRIVATE_KEY_FILE")
        return private_key, public_key

    @property
    def private_key(self):
        """What the sandbox signs notifications with."""
        return self.key_pair[0]

    @property
    def public_key(self):
        """What the provider verifies notifications with."""
        return self.key_pair[1]

    @property
    def merchant_private_key(self):
        """What the shop signs its requests to the sandbox's API with."""
        return self.merchant_key_pair[0]

    @property
    def merchant_public_key(self):
        """What the sandbox verifies the shop's requests with."""
        return self.merchant_key_pair[1]


def _beside(url: str, name: str) -> str:
    """``url`` with its last path segment replaced by ``name`` and no query (``/mockpay/cashier`` ->
    ``/mockpay/api``)."""
    parts = urlsplit(url)
    path = parts.path.rsplit("/", 1)[0] + "/" + name
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))
