"""mockpay: a sandbox payment provider, with its simulated provider site, as a pluggy plugin.

Importing this module creates nothing: the provider and the sandbox are built from the
settings when the hooks are called, and both read the same key pairs (configured files, or
pairs generated once in ``<INSTANCE_PATH>/mockpay/``): the sandbox's, so that what it signs
the provider accepts, and the merchant's, so that it serves only requests the shop signed.
The sandbox mounted in the shop is the one its provider opens trades at, in process.
"""

from ...ports.hookspecs import hookimpl
from .config import SANDBOX_PREFIX
from .provider import MockpayProvider
from .sandbox import make_sandbox_app


@hookimpl
def gmall_payment_providers(settings):
    return [MockpayProvider(settings)]


@hookimpl
def gmall_payment_sandbox_apps(settings, providers):
    sandbox = make_sandbox_app(settings)
    for provider in providers:
        if isinstance(provider, MockpayProvider):
            provider.use_mounted_sandbox(sandbox)
    return {SANDBOX_PREFIX: sandbox}
