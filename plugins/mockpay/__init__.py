"""mockpay: a sandbox payment provider, with its simulated provider site, as a pluggy plugin.

Importing this module creates nothing: the provider and the sandbox are built from the
settings when the hooks are called, and both read the same key pair (configured files, or
one generated once in ``<INSTANCE_PATH>/mockpay/``), so what the sandbox signs the provider
accepts.
"""

from ...ports.providers import hookimpl
from .common import SANDBOX_PREFIX
from .provider import MockpayProvider
from .sandbox import make_sandbox_app


@hookimpl
def gmall_payment_providers(settings):
    return [MockpayProvider(settings)]


@hookimpl
def gmall_payment_sandbox_apps(settings):
    return {SANDBOX_PREFIX: make_sandbox_app(settings)}
