"""The Flask web application: it drives the services and owns no business rule.

``create_app`` is imported on first use: the worker's entry point (``webapp.worker``) and
gunicorn's hooks (``webapp.gunicorn_conf``) name the metrics' directory before anything
imports prometheus-client, which reads it once.
"""


def __getattr__(name):
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
