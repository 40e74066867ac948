"""Engine options per database, for ``SQLALCHEMY_ENGINE_OPTIONS``."""

from sqlalchemy.engine import make_url


def engine_options(url) -> dict:
    """Options that make the store's compare-and-set rules hold on this database.

    MySQL runs READ COMMITTED so that a re-read after a lost insert race sees the winner's
    row (REPEATABLE READ would show the snapshot from before it); pre-ping and recycle
    survive the server closing idle connections. SQLite writers wait for the file lock
    (30 s) instead of failing at once with "database is locked".
    """
    backend = make_url(url).get_backend_name()
    if backend in ("mysql", "mariadb"):
        return {"isolation_level": "READ COMMITTED", "pool_pre_ping": True, "pool_recycle": 3600}
    if backend == "sqlite":
        return {"connect_args": {"timeout": 30}}
    return {}
