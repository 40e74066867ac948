"""The Flask web application: it drives the services and owns no business rule."""

from .app import create_app

__all__ = ["create_app"]
