"""Deprecated: the provider contract's old single module, kept so that providers written against
it still import. Import from the modules it was split into instead:

- ``gmall_payment.ports.provider``: ``Provider`` and the values it exchanges (``Checkout``,
  ``CheckoutForm``, ``CheckoutQr``, ``CheckoutUrls``, ``Refund``, ``Acknowledgement``, ``origins``);
- ``gmall_payment.ports.hookspecs``: ``hookimpl`` (and ``hookspec``, ``PROJECT``), the hooks;
- ``gmall_payment.ports.plugins``: ``make_plugin_manager``, ``ProviderRegistry``,
  ``ENTRY_POINT_GROUP``.

Importing this module warns (DeprecationWarning); it will go in a later release.
"""

import warnings

# Re-exported, every one of them.
from . import hookspecs as ProviderSpecs  # noqa: F401 - the old class of hook specifications, now the module
from .hookspecs import PROJECT, hookimpl, hookspec  # noqa: F401
from .plugins import ENTRY_POINT_GROUP, ProviderRegistry, make_plugin_manager  # noqa: F401
from .provider import (  # noqa: F401
    DEFAULT_QUERY_SCHEDULE,
    Acknowledgement,
    Checkout,
    CheckoutForm,
    CheckoutQr,
    CheckoutUrls,
    Provider,
    Refund,
    origins,
)

warnings.warn(
    "gmall_payment.ports.providers is deprecated: import Provider and its values from gmall_payment.ports.provider, "
    "hookimpl from gmall_payment.ports.hookspecs, make_plugin_manager and ProviderRegistry from "
    "gmall_payment.ports.plugins",
    DeprecationWarning,
    stacklevel=2,
)
