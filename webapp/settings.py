"""Settings: embedded defaults, then the instance folder's config.py, then GMALL_* variables.

``defaults`` holds the web application's own settings; the adapters' and the providers' are
declared, with their defaults, where they are read (``ports.settings``): each default is
written once (docs/settings.md documents them all, and tests/docs checks it).

Every key can be set in the environment with the GMALL_ prefix (GMALL_DATABASE_URL=...);
values that look like JSON (numbers, true/false) are parsed as JSON by Flask.
"""

import contextlib
import os
import secrets
import tempfile

from ..adapters.metrics import METRICS_SETTING
from ..adapters.sql.engine import POOL_SIZE, engine_options, refuse_blocking_driver
from ..ports.settings import boolean, number, unset


def defaults(instance_path: str) -> dict:
    return {
        # A production deployment: no sandbox, explicit secrets shared by every host, checked at
        # start (webapp/production.py); false is the embedded demo.
        "PRODUCTION": False,
        # Staging only: a PRODUCTION shop may serve sandboxes (SANDBOXES, PROVIDERS naming a
        # sandbox, Alipay's offline gateway), and every page says so in a banner.
        "STAGING_ALLOW_SANDBOXES": False,
        # SQLite file in the instance folder; mysql+pymysql://user:pass@host:3306/gmall in production.
        "DATABASE_URL": "sqlite:///" + os.path.join(instance_path, "gmall.db"),
        # MariaDB ends a session idle this long inside a write transaction, and its locks go: a
        # host cut off mid-transaction must not hold the stock row for hours; 0: the server's own.
        "DATABASE_IDLE_WRITE_TIMEOUT_SECONDS": 60,
        # Connections each process keeps open to MySQL: what it does at once (a dramatiq
        # process's threads and its periodic jobs; a gevent worker's requests in the database).
        "DATABASE_POOL_SIZE": POOL_SIZE,
        # Comma-separated provider names to enable; empty means every installed provider
        # (in PRODUCTION, every installed provider that is not a sandbox).
        "PROVIDERS": "",
        # The shop's time zone: pages (and the CLI) show times as people read them there.
        "TIMEZONE": "Asia/Shanghai",
        # Base URL providers use to reach us (notify and return); empty means the request's host.
        "PUBLIC_URL": "",
        # Serve sandbox providers' sites (mockpay's cashier) inside the shop; None: unless PRODUCTION.
        "SANDBOXES": None,
        # Load balancers in front of the shop whose X-Forwarded-* headers are trusted; 0: none.
        "TRUSTED_PROXIES": 0,
        # "text", or "json": one JSON object per line with the request, message, order and payment ids.
        "LOG_FORMAT": "text",
        "LOG_LEVEL": "INFO",
        # /readyz waits this long for the database, Redis and the broker before answering 503.
        "READINESS_TIMEOUT_SECONDS": 1.0,
        # The click trusts a member's session generation remembered in its process this long at
        # most, and only while Redis announces logouts to it (adapters/session_cache.py); 0: it
        # reads the database on every click.
        "SESSION_CACHE_SECONDS": 30.0,
        # The flash sale's click is a GET that reserves: no cross-site sub-request (an <img>
        # on another site) may carry a member's session to it.
        "SESSION_COOKIE_SAMESITE": "Lax",
        # The shop's key pair for its signed requests to mockpay's sandbox (PEM files, both or
        # neither); empty means a pair generated once into instance/mockpay/merchant_*.pem.
        "MOCKPAY_MERCHANT_PRIVATE_KEY_FILE": "",
        "MOCKPAY_MERCHANT_PUBLIC_KEY_FILE": "",
        # The session cookie only over https; None: in PRODUCTION (the embedded default is http).
        "SESSION_COOKIE_SECURE": None,
        # A notification body larger than this many bytes is refused (413) and not stored;
        # providers send a few kilobytes.
        "NOTIFY_MAX_BYTES": 65536,
        # Refused notifications logged per source address and minute; the rest are only answered.
        "NOTIFY_REFUSED_LOG_PER_MINUTE": 20,
        # Failed logins (members' and operators') allowed per account and per address ("limits" syntax).
        "LOGIN_RATE_LIMIT_ACCOUNT": "5/minute",
        "LOGIN_RATE_LIMIT_IP": "30/minute",
        # The Bearer token /metrics asks for; empty: only loopback clients get it, and in PRODUCTION nobody.
        "METRICS_TOKEN": "",
        # Each scrape-time gauge (outbox, dead letters, units left) gets this long, else is left out.
        "METRICS_SCRAPE_TIMEOUT_SECONDS": 1.0,
    }


#: The web application's numbers, checked by the one check (``ports.settings.number``) as
#: ``read`` fills them: each one's kind is its default's, > 0 when it is listed True here.
NUMBERS = {
    "DATABASE_IDLE_WRITE_TIMEOUT_SECONDS": False,
    "DATABASE_POOL_SIZE": True,
    "TRUSTED_PROXIES": False,
    "NOTIFY_MAX_BYTES": True,
    "NOTIFY_REFUSED_LOG_PER_MINUTE": False,
    "READINESS_TIMEOUT_SECONDS": True,
    "SESSION_CACHE_SECONDS": False,
    "METRICS_SCRAPE_TIMEOUT_SECONDS": True,
}


def read(config, instance_path: str, test_config=None) -> None:
    """Fill ``config`` (a Flask Config on ``instance_path``) in the documented order, check its
    numbers, and the defaults that depend on PRODUCTION; nothing is generated
    (``gmall-payment check`` reads settings so, even those the shop would refuse)."""
    base = defaults(instance_path)
    config.from_mapping(base)
    if test_config is None:
        config.from_pyfile("config.py", silent=True)
        config.from_prefixed_env("GMALL")
    else:
        config.from_mapping(test_config)
    config["PRODUCTION"] = boolean(config["PRODUCTION"], "PRODUCTION")
    config["STAGING_ALLOW_SANDBOXES"] = boolean(config["STAGING_ALLOW_SANDBOXES"], "STAGING_ALLOW_SANDBOXES")
    config["METRICS"] = METRICS_SETTING.read(config)
    for key, positive in NUMBERS.items():
        value = base[key] if unset(config.get(key)) else config[key]
        config[key] = number(
            value,
            key,
            kind=type(base[key]),
            positive=positive,
            unit="seconds" if key.endswith("_SECONDS") else "",
        )
    production = config["PRODUCTION"]
    for key, default in (("SANDBOXES", not production), ("SESSION_COOKIE_SECURE", production)):
        config[key] = default if config.get(key) is None else boolean(config[key], key)
    config.setdefault("SECRET_KEY", None)
    config["INSTANCE_PATH"] = instance_path


def derive(app) -> None:
    """After ``read`` (and, in PRODUCTION, its check): what the embedded default generates, and what follows.

    Only the embedded default makes secrets in the instance folder: a PRODUCTION shop's
    SECRET_KEY is the one every host shares (``production.check``).
    """
    os.makedirs(app.instance_path, exist_ok=True)
    if not app.config["SECRET_KEY"] and not app.config["PRODUCTION"]:
        app.config["SECRET_KEY"] = _instance_secret(app.instance_path)
    app.config["OPERATOR_TOKEN"] = operator_token(app.config, app.instance_path)
    url = app.config["DATABASE_URL"]
    refuse_blocking_driver(url)
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", engine_options(url, app.config["DATABASE_POOL_SIZE"]))


#: An operator token shorter than this is refused at start.
OPERATOR_TOKEN_MIN_LENGTH = 16


def operator_token(config, instance_path: str) -> str | None:
    """The credential of operators (refunds, the operator pages), or None: operator access off.

    Set OPERATOR_TOKEN in production; there is no default there (a shop on Redis, or
    PRODUCTION). The embedded default makes one once in the instance folder, as it does the
    session key; ``gmall-payment operator-token`` prints it.
    """
    token = config.get("OPERATOR_TOKEN")
    if token:
        token = str(token)
        if len(token) < OPERATOR_TOKEN_MIN_LENGTH or token != token.strip():
            raise ValueError(
                f"OPERATOR_TOKEN must be at least {OPERATOR_TOKEN_MIN_LENGTH} characters, without "
                "surrounding spaces (e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        return token
    if config.get("REDIS_URL") or config.get("PRODUCTION"):
        return None
    return _instance_secret(instance_path, "operator_token")


def _instance_secret(instance_path: str, name: str = "secret_key") -> str:
    """A secret made once per instance folder (so none is ever committed): the session key,
    the embedded default's operator token.

    Written to a temporary file and linked into place, so processes starting together
    all read the one secret that won.
    """
    path = os.path.join(instance_path, name)
    if not os.path.exists(path):
        fd, tmp = tempfile.mkstemp(dir=instance_path)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_hex(32))
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
        os.unlink(tmp)
    with open(path, encoding="ascii") as handle:
        return handle.read().strip()
