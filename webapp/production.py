"""What a production start requires, as one pure function over the settings: ``check``.

``create_app`` refuses to start a PRODUCTION shop while a finding is fatal (one error naming
every setting at fault); ``gmall-payment check`` prints every finding for the current
settings before a deploy. Fatal: what pays with no money (a sandbox served or enabled, the
offline Alipay gateway), and what makes the shop unsafe on several hosts (a secret generated
per host, a weak operator token, plain http). Warnings: what works on one host only (SQLite,
no Redis): the database still guards every invariant there, the flash sale and the limits
are per process.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..adapters.config import LifecycleSettings, SeckillSettings
from ..adapters.dramatiq.broker import BrokerSettings
from ..plugins.alipay import config as alipay
from ..ports.provider import Provider
from ..ports.settings import declared, deprecations

#: Shorter secrets are refused in production (a token_urlsafe(32) is 43 characters).
MIN_SECRET_LENGTH = 32
HATCH = "STAGING_ALLOW_SANDBOXES"


@dataclass(frozen=True)
class Finding:
    setting: str
    message: str
    fatal: bool

    def __str__(self):
        return f"{'FATAL' if self.fatal else 'warning'} {self.setting}: {self.message}"


class ProductionRefused(ValueError):
    """A PRODUCTION shop asked to start with fatal findings; the message lists every one."""

    def __init__(self, findings: Iterable[Finding]):
        self.findings = [finding for finding in findings if finding.fatal]
        super().__init__(
            "PRODUCTION refuses to start (`gmall-payment check` lists every finding):\n"
            + "\n".join(f"  {finding}" for finding in self.findings)
        )


def check(settings: Mapping, providers: Iterable[Provider]) -> list[Finding]:
    """Every finding about ``settings`` (read by ``settings.read``) as a production start sees
    them, ``providers`` being the enabled ones; outside PRODUCTION only that it is off (and
    the deprecated settings still used, as in PRODUCTION)."""
    if not settings.get("PRODUCTION"):
        return [
            Finding(
                "PRODUCTION",
                "off: the embedded demo (sandboxes served, secrets generated into the "
                "instance folder); set GMALL_PRODUCTION=true to deploy",
                fatal=True,
            ),
            *_deprecated(settings),
        ]
    providers = list(providers)
    return [
        *_secrets(settings),
        *_sandboxes(settings, providers),
        *_alipay(settings, providers),
        *_hosts(settings),
        *_deprecated(settings),
    ]


def sandboxes_on(settings: Mapping, providers: Iterable[Provider]) -> list[str]:
    """What pays with no money in this shop: sandbox sites served, sandbox providers, the offline gateway."""
    found = ["SANDBOXES"] if settings.get("SANDBOXES") else []
    found += [f"PROVIDERS ({provider.name})" for provider in providers if provider.sandbox]
    if any(provider.name == "alipay" for provider in providers) and _alipay_offline(settings):
        found.append("Alipay's offline gateway")
    found += [f"{provider.name}'s offline gateway" for provider in providers if provider.offline_setting]
    return found


def _secrets(settings):
    secret = str(settings.get("SECRET_KEY") or "")
    if not secret:
        yield Finding(
            "SECRET_KEY",
            "not set: every host must sign sessions with the same explicit key "
            "(python3 -c 'import secrets; print(secrets.token_urlsafe(32))'), not one generated "
            "into its instance folder",
            fatal=True,
        )
    elif len(secret) < MIN_SECRET_LENGTH:
        yield Finding("SECRET_KEY", f"shorter than {MIN_SECRET_LENGTH} characters", fatal=True)
    token = settings.get("OPERATOR_TOKEN")
    if not token:
        yield Finding(
            "OPERATOR_TOKEN", "not set: operator access (refunds, the operator pages) is off", fatal=False
        )
    elif len(str(token)) < MIN_SECRET_LENGTH:
        yield Finding("OPERATOR_TOKEN", f"shorter than {MIN_SECRET_LENGTH} characters", fatal=True)
    public_url = str(settings.get("PUBLIC_URL") or "")
    parts = urlsplit(public_url)
    if parts.scheme != "https" or not parts.netloc:
        yield Finding(
            "PUBLIC_URL",
            f"{public_url or 'not set'}: must be the shop's https URL (providers "
            "post notifications there, the browser comes back there)",
            fatal=True,
        )
    if not settings.get("SESSION_COOKIE_SECURE"):
        yield Finding(
            "SESSION_COOKIE_SECURE", "false: session cookies would also travel over http", fatal=True
        )


def _sandboxes(settings, providers):
    staging = settings.get(HATCH)
    if settings.get("SANDBOXES"):
        yield _sandbox(
            "SANDBOXES",
            "true: the sandboxes' sites (mockpay's cashier and API, the offline "
            "Alipay gateway) are served, and pay with no money",
            staging,
        )
    for provider in providers:
        if provider.sandbox:
            yield _sandbox(
                "PROVIDERS",
                f"enables {provider.name}, a sandbox provider: its payments are no money",
                staging,
            )
        elif provider.offline_setting:  # an installed provider without its keys
            yield _sandbox(
                provider.offline_setting,
                f"not set: {provider.name} would pay through its offline gateway, with no money",
                staging,
            )


def _alipay(settings, providers):
    if not any(provider.name == "alipay" for provider in providers):
        return
    if not alipay.is_configured(settings):
        yield _sandbox(
            "ALIPAY_APP_PRIVATE_KEY",
            "no Alipay keys (ALIPAY_APP_PRIVATE_KEY with ALIPAY_PUBLIC_KEY or certificate mode's "
            "ALIPAY_APP_CERT, ALIPAY_PUBLIC_CERT and ALIPAY_ROOT_CERT; each or its _FILE): Alipay "
            "would pay through the offline gateway, with no money",
            settings.get(HATCH),
        )
        return
    gateway = str(settings.get("ALIPAY_GATEWAY_URL") or "production").strip()
    url = alipay.GATEWAYS.get(gateway, gateway)
    if _alipay_offline(settings):
        yield _sandbox(
            "ALIPAY_GATEWAY_URL", f"{gateway}: the offline gateway pays with no money", settings.get(HATCH)
        )
    elif url == alipay.SANDBOX_GATEWAY:
        yield _sandbox(
            "ALIPAY_GATEWAY_URL", "sandbox: Alipay's own sandbox pays with no money", settings.get(HATCH)
        )
    elif url != alipay.PRODUCTION_GATEWAY:
        yield Finding(
            "ALIPAY_GATEWAY_URL",
            f"{gateway} is not Alipay's production gateway ({alipay.PRODUCTION_GATEWAY})",
            fatal=not url.startswith("https://"),
        )
    if not settings.get("ALIPAY_SELLER_ID"):
        yield Finding(
            "ALIPAY_SELLER_ID",
            "not set: a notification for another seller of the same app would be "
            "accepted (the console's PID, 2088...)",
            fatal=True,
        )


def _alipay_offline(settings) -> bool:
    """Whether Alipay pays through the offline gateway: no keys, or a gateway on the shop's own site."""
    if not alipay.is_configured(settings):
        return True
    gateway = str(settings.get("ALIPAY_GATEWAY_URL") or "production").strip()
    return alipay.GATEWAYS.get(gateway, gateway).startswith("/")


def _hosts(settings):
    if str(settings.get("DATABASE_URL") or "").startswith("sqlite"):
        yield Finding(
            "DATABASE_URL",
            "SQLite works on one host only: each host would have a database of its own",
            fatal=False,
        )
    if not settings.get("REDIS_URL"):
        yield Finding(
            "REDIS_URL",
            "not set: the broker, the flash sale's gate and the rate limits are per process "
            "(the database still guards what is sold, but each process gates its own units)",
            fatal=False,
        )


def _deprecated(settings):
    """A setting still set under its former name: it works, and should be renamed."""
    specs = declared(BrokerSettings, LifecycleSettings, SeckillSettings).values()
    for spec, message in deprecations(settings, specs):
        yield Finding(spec.formerly, message, fatal=False)


def _sandbox(setting, message, staging) -> Finding:
    """A sandbox turned on: fatal, unless the staging escape hatch allows it (then a warning)."""
    if staging:
        return Finding(setting, f"{message} (allowed by {HATCH}: staging)", fatal=False)
    return Finding(setting, f"{message}; refused in PRODUCTION ({HATCH}=true only for staging)", fatal=True)
