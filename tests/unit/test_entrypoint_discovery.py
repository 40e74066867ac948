"""A provider installed from another distribution appears through the entry-point group alone."""

import importlib
import importlib.metadata
import sys
import textwrap

import pytest

from gmall_payment.core.errors import UnknownProvider
from gmall_payment.ports.plugins import ENTRY_POINT_GROUP, ProviderRegistry, make_plugin_manager

MODULE = "gmall_thirdparty_pay"

PLUGIN_SOURCE = textwrap.dedent(
    '''
    """A third-party payment provider, packaged apart from gmall-payment."""

    from gmall_payment.ports.hookspecs import hookimpl
    from gmall_payment.ports.provider import Acknowledgement, Checkout, Provider


    class ThirdPay(Provider):
        name = "thirdpay"
        title = "Third Pay"

        def __init__(self, settings):
            self.settings = settings

        def checkout(self, payment, urls):
            return Checkout(redirect_url="https://thirdpay.example/pay")

        def parse_notification(self, params):
            raise NotImplementedError

        def acknowledge(self, accepted):
            return Acknowledgement("OK" if accepted else "NO")


    @hookimpl
    def gmall_payment_providers(settings):
        return [ThirdPay(settings)]
    '''
)


@pytest.fixture
def thirdparty_distribution(tmp_path, monkeypatch):
    """Install ``gmall_thirdparty_pay`` 1.0 into a folder on sys.path, and take it away afterwards."""
    site = tmp_path / "site-packages"
    site.mkdir()
    (site / f"{MODULE}.py").write_text(PLUGIN_SOURCE, encoding="utf-8")
    dist_info = site / f"{MODULE}-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {MODULE}\nVersion: 1.0\n", encoding="utf-8"
    )
    (dist_info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nthirdpay = {MODULE}\n", encoding="utf-8"
    )

    sys.modules.pop(MODULE, None)
    monkeypatch.syspath_prepend(str(site))  # also invalidates the import caches
    importlib.invalidate_caches()
    yield site
    monkeypatch.undo()
    sys.modules.pop(MODULE, None)
    sys.path_importer_cache.pop(str(site), None)
    importlib.invalidate_caches()


def settings_for(tmp_path):
    return {"INSTANCE_PATH": str(tmp_path)}


def test_not_there_before_it_is_installed(tmp_path):
    pm = make_plugin_manager(load_entrypoints=True)
    assert pm.get_plugin("thirdpay") is None
    assert "thirdpay" not in ProviderRegistry.from_plugins(pm, settings_for(tmp_path)).names()


def test_an_installed_distribution_adds_its_provider(thirdparty_distribution, tmp_path):
    pm = make_plugin_manager(load_entrypoints=True)

    assert pm.get_plugin("thirdpay") is sys.modules[MODULE]
    registry = ProviderRegistry.from_plugins(pm, settings_for(tmp_path))
    assert "thirdpay" in registry.names()
    provider = registry.get("thirdpay")
    assert provider.title == "Third Pay"
    assert provider.settings == settings_for(tmp_path)  # the hook got the application's settings
    assert provider.acknowledge(True).body == "OK"


def test_settings_choose_whether_it_is_enabled(thirdparty_distribution, tmp_path):
    pm = make_plugin_manager(load_entrypoints=True)
    registry = ProviderRegistry.from_plugins(pm, settings_for(tmp_path), enabled=["mockpay"])
    assert "thirdpay" not in registry.names()
    with pytest.raises(UnknownProvider):
        registry.get("thirdpay")


def test_entry_points_are_loaded_only_when_asked(thirdparty_distribution, tmp_path):
    pm = make_plugin_manager(load_entrypoints=False)
    assert pm.get_plugin("thirdpay") is None
    assert MODULE not in sys.modules


def test_the_distribution_is_gone_after_the_test(tmp_path):
    """Runs after the tests above: their fixture took the module and the distribution away."""
    assert MODULE not in sys.modules
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.distribution(MODULE)
    assert make_plugin_manager(load_entrypoints=True).get_plugin("thirdpay") is None
