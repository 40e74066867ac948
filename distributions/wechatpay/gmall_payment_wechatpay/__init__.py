"""WeChat Pay (微信支付, API v3) for gmall-payment: a provider installed as its own distribution.

Registered only through the ``gmall_payment.providers`` entry-point group: installing
``gmall-payment-wechatpay`` adds "微信支付" to the shop, uninstalling it removes it. With no
WeChat Pay keys configured (the embedded default) the provider calls the offline gateway that
this plugin mounts in the shop under ``/wechatpay-sandbox``; see ``config``.
"""

from gmall_payment.ports.hookspecs import hookimpl

from .config import OFFLINE_PREFIX, WechatPayConfig
from .gateway import make_gateway_app
from .provider import WechatPayProvider

__version__ = "0.1.0"


@hookimpl
def gmall_payment_providers(settings):
    return [WechatPayProvider(WechatPayConfig.from_settings(settings))]


@hookimpl
def gmall_payment_sandbox_apps(settings):
    """The offline gateway, mounted only when the provider points at it (the embedded default)."""
    if not WechatPayConfig.from_settings(settings).serves_offline_gateway:
        return {}
    return {OFFLINE_PREFIX: make_gateway_app(settings)}
