"""gunicorn's hooks (webapp/gunicorn_conf.py): each worker opens the click's connections before
its first request, as many as it serves at once."""

from types import SimpleNamespace

import pytest
from support.shop import make_app

from gmall_payment.webapp import gunicorn_conf


def settings(worker_class, worker_connections=1000, threads=1):
    return SimpleNamespace(
        worker_class_str=worker_class, worker_connections=worker_connections, threads=threads
    )


@pytest.mark.parametrize(
    ("cfg", "expected"),
    [
        (settings("gevent", worker_connections=13), 13),
        (settings("gevent"), gunicorn_conf.CLICK_CONNECTIONS),  # gunicorn's default 1,000: capped
        (settings("gthread", threads=4), 4),
        (settings("sync"), 1),
    ],
)
def test_a_worker_opens_as_many_connections_as_it_serves_requests_at_once(cfg, expected):
    assert gunicorn_conf.at_once(cfg) == expected


def test_the_worker_opens_them_once_the_shop_is_loaded(tmp_path, monkeypatch):
    app = make_app(tmp_path)
    try:
        opened = []
        monkeypatch.setattr(app.extensions["click_path"], "open_connections", opened.append)
        gunicorn_conf.post_worker_init(
            SimpleNamespace(wsgi=app, cfg=settings("gevent", worker_connections=9))
        )
        assert opened == [9]
        gunicorn_conf.post_worker_init(SimpleNamespace(wsgi=lambda environ, start: [], cfg=settings("sync")))
    finally:
        app.extensions["gmall"].bus.close()
