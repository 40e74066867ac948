"""The hooks of gmall-payment: the one marker pair, and every hook as an empty function whose
docstring is its documentation (docs/providers.md lists each one; a test keeps them in step).

A plugin implements a hook with a function of the same name marked ``@hookimpl``; it may take
fewer arguments than the spec, and pluggy calls it with keyword arguments only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .plugins import ProviderRegistry
    from .provider import Provider

PROJECT = "gmall_payment"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def gmall_payment_providers(settings: Mapping) -> Iterable[Provider]:
    """Return the providers this plugin offers, built from ``settings``.

    ``settings`` is the application's configuration mapping (keys like
    ``MOCKPAY_KEY_FILE``), plus ``INSTANCE_PATH``, the folder where a plugin may keep
    generated files. Return an empty list when the plugin is not configured.
    """


@hookspec
def gmall_payment_sandbox_apps(settings: Mapping, providers: ProviderRegistry) -> Mapping[str, object]:
    """Return simulated provider sites to serve inside the shop, as ``{prefix: wsgi_app}``.

    Only sandbox providers implement this; the web application mounts each app under its
    URL prefix (for example ``/mockpay``) so that the embedded shop runs with no
    outside service. ``providers`` are the shop's enabled providers: a provider may call
    the site mounted beside it in process (an implementation may leave the argument out).
    """
