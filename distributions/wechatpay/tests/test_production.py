"""PRODUCTION with WeChat Pay installed: without keys the shop refuses to start (the offline
gateway pays with no money) and generates nothing; with keys it starts and serves no gateway."""

import pytest
from support.production import production_config, production_settings
from support.shop import make_app
from wechat_support import KEYS, configured_settings

from gmall_payment.webapp import create_app
from gmall_payment.webapp.production import ProductionRefused, sandboxes_on


def test_a_production_shop_without_wechat_pay_keys_refuses_to_start_and_generates_nothing(tmp_path):
    with pytest.raises(ProductionRefused) as refused:
        create_app(production_config(tmp_path))
    assert [finding.setting for finding in refused.value.findings] == ["WECHATPAY_PRIVATE_KEY_FILE"]
    assert "offline gateway, with no money" in str(refused.value)
    assert not (tmp_path / "instance" / "wechatpay").exists()


def test_the_staging_hatch_lets_it_through_with_a_banner(tmp_path):
    app = make_app(tmp_path, **production_settings(tmp_path, STAGING_ALLOW_SANDBOXES=True))
    providers = app.extensions["gmall"].providers
    assert "wechatpay" in providers.names()
    assert "wechatpay's offline gateway" in sandboxes_on(app.config, providers)


def test_a_production_shop_with_wechat_pay_keys_starts_and_serves_no_gateway(tmp_path):
    wechat = configured_settings(tmp_path, KEYS["merchant"], KEYS["wechat"], KEYS["old"], KEYS["platform"])
    wechat["WECHATPAY_API_URL"] = "https://api.mch.weixin.qq.com"
    app = make_app(tmp_path, **production_settings(tmp_path, **wechat))
    assert app.extensions["gmall"].providers.get("wechatpay").offline_setting is None
    assert app.test_client().get("/wechatpay-sandbox/scan").status_code == 404
    assert not (tmp_path / "instance" / "wechatpay").exists()
