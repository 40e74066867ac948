"""The application factory."""

import os

from flask import Flask
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from ..adapters.bootstrap import BUILTIN_PROVIDERS, bootstrap, provider_registry
from ..adapters.session_cache import SessionCache
from ..adapters.sql.engine import prepare_engine
from ..adapters.sql.members import SessionEpochs
from ..adapters.sql.models import db
from ..adapters.sql.seckill import SqlSales, SqlSeckillOrders
from ..adapters.sql.store import SqlUnitOfWork
from ..ports.plugins import make_plugin_manager
from . import (
    api,
    callbacks,
    cli,
    errors,
    formatting,
    health,
    logs,
    metrics,
    operator,
    payment,
    production,
    seckill,
    security,
    settings,
    shopper,
    storefront,
    throttles,
)
from .click_path import ClickPath
from .ids import IdConverter
from .limits import limit_waits

csrf = CSRFProtect()


def create_app(test_config=None) -> Flask:
    """Build the shop; ``test_config`` replaces the instance file and the environment."""
    instance_path = os.path.abspath((test_config or {}).get("INSTANCE_PATH") or cli.instance_path())
    app = Flask(__name__, instance_path=instance_path, instance_relative_config=True)
    settings.read(app.config, app.instance_path, test_config)
    logs.configure(app)
    plugins = make_plugin_manager(BUILTIN_PROVIDERS)
    staging = _refuse_unsafe(app, provider_registry(app.config, plugins)) if app.config["PRODUCTION"] else []
    app.context_processor(lambda: {"staging_sandboxes": staging})  # the banner of base.html
    settings.derive(app)
    db.init_app(app)
    with app.app_context():
        prepare_engine(db.engine, app.config["DATABASE_IDLE_WRITE_TIMEOUT_SECONDS"])
    csrf.init_app(app)
    formatting.register(app)
    errors.register(app)
    shopper.register(app)
    app.url_map.converters["id"] = IdConverter  # before the routes that use it
    for blueprint in (
        storefront.bp,
        payment.bp,
        callbacks.bp,
        api.bp,
        operator.pages,
        operator.api,
        seckill.bp,
        health.bp,
        metrics.bp,
    ):
        app.register_blueprint(blueprint)
    csrf.exempt(callbacks.bp)  # providers prove themselves by signature, not by a form token
    csrf.exempt(operator.api)  # a Bearer token, which no browser sends by itself
    cli.register(app)
    app.extensions["gmall"] = bootstrap(
        app.config,
        SqlUnitOfWork,
        sales=SqlSales(),
        seckill_orders=SqlSeckillOrders(),
        context=app.app_context,
        plugins=plugins,
    )
    policy = security.protect(app, app.extensions["gmall"].providers)
    limit_waits(app, app.extensions["gmall"])
    throttles.install(app, app.extensions["gmall"])
    # The embedded default's in-process worker (and its outbox sweep) starts with the first
    # request, not with every CLI command; on Redis this does nothing.
    app.before_request(app.extensions["gmall"].bus.start)
    with app.app_context():
        app.extensions["sessions"] = SessionCache(
            SessionEpochs(db.engine.url),
            app.extensions["gmall"].sessions_ended,
            app.config["SESSION_CACHE_SECONDS"],
            app.permanent_session_lifetime.total_seconds(),
        )
    app.wsgi_app = app.extensions["click_path"] = ClickPath(
        app, app.extensions["gmall"], app.extensions["sessions"]
    )
    if app.config["SANDBOXES"]:
        _mount_sandboxes(app, policy)
    security.behind_proxies(app)  # outermost: every layer above sees the shopper's address
    return app


def _refuse_unsafe(app: Flask, providers) -> list[str]:
    """A PRODUCTION start: stop on any fatal finding, log the warnings; returns the sandboxes
    the staging escape hatch lets through (every page names them)."""
    findings = production.check(app.config, providers)
    if any(finding.fatal for finding in findings):
        raise production.ProductionRefused(findings)
    for finding in findings:
        app.logger.warning("production check: %s", finding)
    return production.sandboxes_on(app.config, providers)


def _mount_sandboxes(app: Flask, policy) -> None:
    """Serve sandbox providers' own sites (e.g. mockpay's cashier) under their prefixes, with the shop's headers."""
    plugins = app.extensions["gmall"].plugin_manager
    mounts = {}
    for apps in plugins.hook.gmall_payment_sandbox_apps(
        settings=app.config, providers=app.extensions["gmall"].providers
    ):
        mounts.update({prefix: security.WithHeaders(site, policy) for prefix, site in apps.items()})
    if mounts:
        app.wsgi_app = DispatcherMiddleware(app.wsgi_app, mounts)
