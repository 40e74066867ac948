"""The application factory."""

import os

from flask import Flask
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from ..adapters.bootstrap import bootstrap
from ..adapters.sql.engine import prepare_engine
from ..adapters.sql.models import db
from ..adapters.sql.seckill import SqlSales, SqlSeckillOrders
from ..adapters.sql.store import SqlUnitOfWork
from . import api, callbacks, cli, operator, payment, seckill, settings, storefront
from .click_path import ClickPath
from .limits import limit_waits

csrf = CSRFProtect()


def create_app(test_config=None) -> Flask:
    """Build the shop; ``test_config`` replaces the instance file and the environment."""
    instance_path = os.path.abspath(
        (test_config or {}).get("INSTANCE_PATH") or os.environ.get("GMALL_INSTANCE_PATH") or "instance"
    )
    app = Flask(__name__, instance_path=instance_path, instance_relative_config=True)
    settings.load(app, test_config)
    db.init_app(app)
    with app.app_context():
        prepare_engine(db.engine)
    csrf.init_app(app)
    for blueprint in (storefront.bp, payment.bp, callbacks.bp, api.bp, operator.pages, operator.api, seckill.bp):
        app.register_blueprint(blueprint)
    csrf.exempt(callbacks.bp)  # providers prove themselves by signature, not by a form token
    csrf.exempt(operator.api)  # a Bearer token, which no browser sends by itself
    cli.register(app)
    app.extensions["gmall"] = bootstrap(app.config, SqlUnitOfWork, sales=SqlSales(), seckill_orders=SqlSeckillOrders(),
                                        context=app.app_context)
    limit_waits(app, app.extensions["gmall"])
    # The embedded default's in-process worker (and its outbox sweep) starts with the first
    # request, not with every CLI command; on Redis this does nothing.
    app.before_request(app.extensions["gmall"].bus.start)
    app.wsgi_app = ClickPath(app, app.extensions["gmall"])
    if app.config["SANDBOXES"]:
        _mount_sandboxes(app)
    return app


def _mount_sandboxes(app: Flask) -> None:
    """Serve sandbox providers' own sites (e.g. mockpay's cashier) under their prefixes."""
    plugins = app.extensions["gmall"].plugins
    mounts = {}
    for apps in plugins.hook.gmall_payment_sandbox_apps(settings=app.config):
        mounts.update(apps)
    if mounts:
        app.wsgi_app = DispatcherMiddleware(app.wsgi_app, mounts)
