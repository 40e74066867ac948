"""Alipay (支付宝) as a pluggy plugin: the provider, and the offline gateway that speaks its protocol.

Importing this module creates nothing: the provider and the gateway are built from the
settings when the hooks are called. With no Alipay keys configured (the embedded default)
the provider points at the offline gateway mounted in the shop under ``/alipay-sandbox``,
with key pairs generated once in ``<INSTANCE_PATH>/alipay/``; see ``config``.
"""

from ...ports.hookspecs import hookimpl
from .config import OFFLINE_PREFIX, AlipayConfig
from .gateway import make_gateway_app
from .provider import AlipayProvider


@hookimpl
def gmall_payment_providers(settings):
    return [AlipayProvider(AlipayConfig.from_settings(settings))]


@hookimpl
def gmall_payment_sandbox_apps(settings, providers):
    """The offline gateway, mounted only when the provider points at it (the embedded default);
    the provider then calls it in process."""
    if not AlipayConfig.from_settings(settings).serves_offline_gateway:
        return {}
    gateway = make_gateway_app(settings)
    for provider in providers:
        if isinstance(provider, AlipayProvider):
            provider.use_mounted_gateway(gateway)
    return {OFFLINE_PREFIX: gateway}
