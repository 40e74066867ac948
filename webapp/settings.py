"""Settings: embedded defaults, then the instance folder's config.py, then GMALL_* variables.

Every key can be set in the environment with the GMALL_ prefix (GMALL_DATABASE_URL=...);
values that look like JSON (numbers, true/false) are parsed as JSON by Flask.
"""

import contextlib
import os
import secrets
import tempfile

from ..adapters.sql.engine import engine_options


def defaults(instance_path: str) -> dict:
    return {
        # SQLite file in the instance folder; mysql+pymysql://user:pass@host:3306/gmall in production.
        "DATABASE_URL": "sqlite:///" + os.path.join(instance_path, "gmall.db"),
        # Comma-separated provider names to enable; empty means every installed provider.
        "PROVIDERS": "",
        # Base URL providers use to reach us (notify and return); empty means the request's host.
        "PUBLIC_URL": "",
        # Serve sandbox providers' sites (mockpay's cashier) inside the shop.
        "SANDBOXES": True,
        # Dramatiq's broker: redis://127.0.0.1:6379/0 in production; empty means in-process.
        "REDIS_URL": "",
        "REDIS_NAMESPACE": "gmall",
        # Every OUTBOX_SWEEP_SECONDS each worker sends what the outbox still holds, and again
        # what was sent OUTBOX_REDELIVER_SECONDS ago but whose steps never finished.
        "OUTBOX_SWEEP_SECONDS": 30,
        "OUTBOX_REDELIVER_SECONDS": 300,
        # Payments still unpaid RECONCILE_GRACE_SECONDS after they start are asked about
        # (then on the provider's retry series); workers look for them every RECONCILE_SECONDS.
        "RECONCILE_GRACE_SECONDS": 300,
        "RECONCILE_SECONDS": 60,
        # Orders unpaid ORDER_PAY_TIMEOUT seconds after they were placed are closed, with
        # their trades; workers look for them every EXPIRY_SECONDS.
        "ORDER_PAY_TIMEOUT": 1800,
        "EXPIRY_SECONDS": 60,
        # The flash sale's click is a GET that reserves: no cross-site sub-request (an <img>
        # on another site) may carry a member's session to it.
        "SESSION_COOKIE_SAMESITE": "Lax",
    }


def load(app, test_config=None) -> None:
    """Fill ``app.config`` in the documented order and derive what follows from it."""
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(defaults(app.instance_path))
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
        app.config.from_prefixed_env("GMALL")
    else:
        app.config.from_mapping(test_config)
    app.config.setdefault("SECRET_KEY", None)
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = _instance_secret(app.instance_path)
    app.config["OPERATOR_TOKEN"] = operator_token(app.config, app.instance_path)
    url = app.config["DATABASE_URL"]
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", engine_options(url))
    app.config["INSTANCE_PATH"] = app.instance_path


#: An operator token shorter than this is refused at start.
OPERATOR_TOKEN_MIN_LENGTH = 16


def operator_token(config, instance_path: str) -> str | None:
    """The credential of operators (refunds, the operator pages), or None: operator access off.

    Set OPERATOR_TOKEN in production; there is no default there (a shop on Redis). The embedded
    default (no REDIS_URL) makes one once in the instance folder, as it does the session key;
    ``gmall-payment operator-token`` prints it.
    """
    token = config.get("OPERATOR_TOKEN")
    if token:
        token = str(token)
        if len(token) < OPERATOR_TOKEN_MIN_LENGTH or token != token.strip():
            raise ValueError(f"OPERATOR_TOKEN must be at least {OPERATOR_TOKEN_MIN_LENGTH} characters, without "
                             "surrounding spaces (e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))')")
        return token
    if config.get("REDIS_URL"):
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
