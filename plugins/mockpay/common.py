"""What mockpay's two sides share: the shop-side provider and the simulated provider site.

Both are built from the same settings and so find the same key pair: the sandbox signs with
its private key what the provider verifies with the public one.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from .. import signing
from ..sitekit import parse_schedule, seconds

#: Where the web application mounts the sandbox (``gmall_payment_sandbox_apps``).
SANDBOX_PREFIX = "/mockpay"
DEFAULT_APP_ID = "mockpay-sandbox"
DEFAULT_CASHIER_URL = f"{SANDBOX_PREFIX}/cashier"
DEFAULT_NOTIFY_SCHEDULE = "0,1,2,5,10,30"
DEFAULT_LATE_SECONDS = 5


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

    @classmethod
    def from_settings(cls, settings: Mapping) -> "MockpayConfig":
        return cls(
            app_id=settings.get("MOCKPAY_APP_ID") or DEFAULT_APP_ID,
            cashier_url=settings.get("MOCKPAY_CASHIER_URL") or DEFAULT_CASHIER_URL,
            notify_schedule=parse_schedule(
                settings.get("MOCKPAY_NOTIFY_SCHEDULE", DEFAULT_NOTIFY_SCHEDULE), "MOCKPAY_NOTIFY_SCHEDULE"
            ),
            late_seconds=seconds(
                settings.get("MOCKPAY_LATE_SECONDS", DEFAULT_LATE_SECONDS), "MOCKPAY_LATE_SECONDS"
            ),
            public_key_file=settings.get("MOCKPAY_PUBLIC_KEY_FILE") or None,
            private_key_file=settings.get("MOCKPAY_PRIVATE_KEY_FILE") or None,
            instance_path=settings.get("INSTANCE_PATH") or None,
        )

    def __post_init__(self):
        """Refuse key settings that cannot work now, rather than at the first payment.

        Both files or neither: one without the other would make the sandbox sign with a key
        the provider cannot verify.
        """
        if bool(self.public_key_file) != bool(self.private_key_file):
            raise ValueError("set both MOCKPAY_PUBLIC_KEY_FILE and MOCKPAY_PRIVATE_KEY_FILE, or neither")
        if not self.public_key_file and not self.instance_path:
            raise ValueError("INSTANCE_PATH is needed to keep mockpay's generated key pair")

    @cached_property
    def key_pair(self):
        """(private, public): the configured files, else a pair generated in the instance folder."""
        if not self.private_key_file:
            return signing.ensure_key_pair(Path(self.instance_path) / "mockpay", "mockpay")
        private_key = signing.load_private_key(Path(self.private_key_file).read_bytes())
        public_key = signing.load_public_key(Path(self.public_key_file).read_bytes())
        if private_key.public_key().public_numbers() != public_key.public_numbers():
            raise ValueError("MOCKPAY_PUBLIC_KEY_FILE does not match MOCKPAY_PRIVATE_KEY_FILE")
        return private_key, public_key

    @property
    def private_key(self):
        """What the sandbox signs notifications with."""
        return self.key_pair[0]

    @property
    def public_key(self):
        """What the provider verifies notifications with."""
        return self.key_pair[1]
