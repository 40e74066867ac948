"""ports.plugins and ports.provider: the pluggy plugin manager, the registry of enabled providers, Provider defaults."""

from datetime import datetime
from decimal import Decimal
from types import SimpleNamespace

import pluggy
import pytest

from gmall_payment.core.errors import NotSupported, UnknownProvider
from gmall_payment.core.model import Payment
from gmall_payment.ports.hookspecs import PROJECT, hookimpl
from gmall_payment.ports.plugins import ENTRY_POINT_GROUP, ProviderRegistry, make_plugin_manager
from gmall_payment.ports.provider import Provider


class ProvidersPlugin:
    """A plugin object offering providers of the given class and names."""

    def __init__(self, provider_class, *names):
        self.provider_class = provider_class
        self.names = names
        self.settings_seen = []

    @hookimpl
    def gmall_payment_providers(self, settings):
        self.settings_seen.append(settings)
        return [self.provider_class(name) for name in self.names]


def test_names_of_the_project():
    assert PROJECT == "gmall_payment"
    assert ENTRY_POINT_GROUP == "gmall_payment.providers"


def test_builtins_are_registered_under_their_names(provider_class):
    alpha, beta = ProvidersPlugin(provider_class, "alpha"), ProvidersPlugin(provider_class, "beta1", "beta2")
    pm = make_plugin_manager({"alpha-plugin": alpha, "beta-plugin": beta}, load_entrypoints=False)

    assert pm.get_plugin("alpha-plugin") is alpha
    assert pm.get_plugin("beta-plugin") is beta
    assert pm.get_name(beta) == "beta-plugin"
    registry = ProviderRegistry.from_plugins(pm, {"KEY": "value"})
    assert sorted(registry.names()) == ["alpha", "beta1", "beta2"]
    assert alpha.settings_seen == [{"KEY": "value"}]


def test_without_builtins_or_entry_points_there_is_no_provider():
    pm = make_plugin_manager(load_entrypoints=False)
    assert ProviderRegistry.from_plugins(pm, {}).names() == []


def test_a_builtin_shadows_the_entry_point_of_the_same_name(provider_class, tmp_path):
    mine = ProvidersPlugin(provider_class, "mockpay")
    pm = make_plugin_manager({"mockpay": mine}, load_entrypoints=True)
    assert pm.get_plugin("mockpay") is mine  # this package's own entry point was skipped
    assert (
        ProviderRegistry.from_plugins(pm, {"INSTANCE_PATH": str(tmp_path)}).get("mockpay").title == "Fake Pay"
    )


def test_a_misspelt_hook_implementation_fails_loudly():
    class Misspelt:
        @hookimpl
        def gmall_payment_provider(self, settings):  # missing "s"
            return []

    with pytest.raises(pluggy.PluginValidationError) as error:
        make_plugin_manager({"misspelt": Misspelt()}, load_entrypoints=False)
    assert "gmall_payment_provider" in str(error.value)


def test_a_wrong_hook_signature_fails_loudly():
    class WrongArgs:
        @hookimpl
        def gmall_payment_providers(self, config):
            return []

    with pytest.raises(pluggy.PluginValidationError):
        make_plugin_manager({"wrong": WrongArgs()}, load_entrypoints=False)


def test_registry_keeps_only_enabled_providers_in_order(provider_class):
    a, b, c = provider_class("a"), provider_class("b"), provider_class("c")

    everything = ProviderRegistry([c, a, b])
    assert everything.names() == ["c", "a", "b"]
    assert list(everything) == [c, a, b]
    assert everything.get("a") is a

    some = ProviderRegistry([c, a, b], enabled=["b", "c", "not-installed"])
    assert some.names() == ["c", "b"]
    assert some.get("b") is b
    with pytest.raises(UnknownProvider) as error:
        some.get("a")
    assert error.value.name == "a"

    assert ProviderRegistry([a, b], enabled=[]).names() == []


def test_registry_keeps_the_first_provider_of_a_name(provider_class):
    first, second = provider_class("dup"), provider_class("dup")
    assert ProviderRegistry([first, second]).get("dup") is first


def test_from_plugins_filters_by_enabled(provider_class):
    pm = make_plugin_manager({"p": ProvidersPlugin(provider_class, "a", "b")}, load_entrypoints=False)
    registry = ProviderRegistry.from_plugins(pm, {}, enabled=["b"])
    assert registry.names() == ["b"]
    with pytest.raises(UnknownProvider):
        registry.get("a")


def test_provider_defaults_say_not_supported(fake):
    payment = Payment("O1", "fakepay", Decimal("1.00"), "s", datetime(2024, 1, 1))
    with pytest.raises(NotSupported, match="fakepay"):
        fake.query(payment)
    with pytest.raises(NotSupported, match="fakepay"):
        fake.close(payment)
    with pytest.raises(NotSupported, match="fakepay"):
        fake.refund(payment, Decimal("1.00"), "R1")


def test_provider_is_abstract():
    with pytest.raises(TypeError):
        Provider()

    class Incomplete(Provider):
        name = "incomplete"

        def checkout(self, payment, urls):
            return SimpleNamespace()

    with pytest.raises(TypeError):
        Incomplete()
