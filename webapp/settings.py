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
    url = app.config["DATABASE_URL"]
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", engine_options(url))
    app.config["INSTANCE_PATH"] = app.instance_path


def _instance_secret(instance_path: str) -> str:
    """A session key made once per instance folder (so none is ever committed).

    Written to a temporary file and linked into place, so processes starting together
    all read the one key that won.
    """
    path = os.path.join(instance_path, "secret_key")
    if not os.path.exists(path):
        fd, tmp = tempfile.mkstemp(dir=instance_path)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_hex(32))
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
        os.unlink(tmp)
    with open(path, encoding="ascii") as handle:
        return handle.read().strip()
