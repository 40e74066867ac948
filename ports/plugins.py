"""The plugin host: the one plugin manager, and the registry of the providers it enabled.

The built-in providers are plugins registered explicitly by the composition root; those of any
installed distribution come from the entry-point group ``gmall_payment.providers``.
"""

from collections.abc import Iterable, Mapping

import pluggy

from ..core.errors import UnknownProvider
from . import hookspecs
from .hookspecs import PROJECT
from .provider import Provider

ENTRY_POINT_GROUP = "gmall_payment.providers"


def make_plugin_manager(builtins: Mapping[str, object] = (), load_entrypoints: bool = True):
    """Build the one plugin manager: built-in plugins first, then the entry-point group.

    ``builtins`` maps entry-point names to plugins; registering them under those names makes
    pluggy skip the same names when it loads the entry points. ``check_pending`` makes a
    misspelt hook implementation fail here instead of being silently ignored.
    """
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    for name, plugin in dict(builtins).items():
        pm.register(plugin, name=name)
    if load_entrypoints:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    pm.check_pending()
    return pm


class ProviderRegistry:
    """The enabled providers, by name, in the order the plugins returned them.

    ``enabled`` names them; None means every one offered, less the sandboxes unless
    ``sandboxes`` (production's default leaves them out).
    """

    def __init__(
        self, providers: Iterable[Provider], enabled: Iterable[str] | None = None, sandboxes: bool = True
    ):
        allowed = None if enabled is None else set(enabled)
        self._providers = {}
        for provider in providers:
            wanted = (sandboxes or not provider.sandbox) if allowed is None else provider.name in allowed
            if wanted:
                self._providers.setdefault(provider.name, provider)

    @classmethod
    def from_plugins(
        cls, pm, settings: Mapping, enabled: Iterable[str] | None = None, sandboxes: bool = True
    ):
        offered = [p for result in pm.hook.gmall_payment_providers(settings=settings) for p in result]
        return cls(offered, enabled, sandboxes)

    def get(self, name: str) -> Provider:
        try:
            return self._providers[name]
        except KeyError:
            raise UnknownProvider(name) from None

    def __iter__(self):
        return iter(self._providers.values())

    def names(self) -> list[str]:
        return list(self._providers)
