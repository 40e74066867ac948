"""The provider of docs/providers.md ("Adding a provider") runs as written, and a provider written
against the old module ``gmall_payment.ports.providers`` still does, with a DeprecationWarning."""

import importlib
import re
import sys
import types
import warnings
from pathlib import Path

import pytest

from gmall_payment.ports import hookspecs, plugins, provider
from gmall_payment.ports.plugins import ProviderRegistry, make_plugin_manager

DOC = Path(__file__).resolve().parents[2] / "docs" / "providers.md"
OLD_IMPORT = "from gmall_payment.ports.providers import Provider, hookimpl"
OLD_NAMES = {
    provider: [
        "DEFAULT_QUERY_SCHEDULE",
        "Acknowledgement",
        "Checkout",
        "CheckoutForm",
        "CheckoutQr",
        "CheckoutUrls",
        "Provider",
        "Refund",
        "origins",
    ],
    hookspecs: ["PROJECT", "hookimpl", "hookspec"],
    plugins: ["ENTRY_POINT_GROUP", "ProviderRegistry", "make_plugin_manager"],
}


def example_source() -> str:
    """The first Python block of the section "Adding a provider"."""
    section = DOC.read_text(encoding="utf-8").split("\n## Adding a provider\n", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S)[1]


def as_module(source: str, name: str = "mypay_package") -> types.ModuleType:
    module = types.ModuleType(name)
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    return module


def registry_with(plugin) -> ProviderRegistry:
    return ProviderRegistry.from_plugins(make_plugin_manager({"mypay": plugin}, load_entrypoints=False), {})


def test_the_documented_provider_runs_as_written():
    source = example_source()
    assert "gmall_payment.ports.providers" not in source  # the docs show the modules to use
    mypay = registry_with(as_module(source)).get("mypay")
    assert (mypay.name, mypay.title, mypay.sandbox) == ("mypay", "My Pay", False)
    assert isinstance(mypay, provider.Provider)


@pytest.fixture
def old_module_unloaded():
    """``gmall_payment.ports.providers`` imported afresh by the test, then as it was."""
    saved = sys.modules.pop("gmall_payment.ports.providers", None)
    yield
    sys.modules.pop("gmall_payment.ports.providers", None)
    if saved is not None:
        sys.modules["gmall_payment.ports.providers"] = saved


def test_a_provider_written_for_the_old_module_still_runs_and_is_warned(old_module_unloaded):
    source = example_source()
    old = re.sub(
        r"from gmall_payment\.ports\.hookspecs import hookimpl\nfrom gmall_payment\.ports\.provider "
        r"import Provider\n",
        OLD_IMPORT + "\n",
        source,
    )
    assert OLD_IMPORT in old

    with pytest.warns(DeprecationWarning, match="gmall_payment.ports.providers is deprecated") as warned:
        module = as_module(old)
    assert registry_with(module).get("mypay").title == "My Pay"
    assert warned[0].filename == "<mypay_package>"  # the warning names the importer, not importlib


def test_the_old_module_re_exports_every_public_name(old_module_unloaded):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old = importlib.import_module("gmall_payment.ports.providers")
    for new, names in OLD_NAMES.items():
        for name in names:
            assert getattr(old, name) is getattr(new, name), name
    pm = make_plugin_manager(load_entrypoints=False)
    assert pm.hook.gmall_payment_providers.spec.namespace is hookspecs
    assert old.ProviderSpecs is hookspecs
