"""Settings are read through one module (``ports.settings``): one check for numbers, each
default declared once, a renamed setting still read under its old name with a warning; and the
composition root's ``Services`` is built by name."""

import dataclasses
import logging
import math
from datetime import timedelta

import pytest
from click.testing import CliRunner
from support.shop import make_app

from gmall_payment.adapters.bootstrap import Services
from gmall_payment.adapters.config import LifecycleSettings, SeckillSettings
from gmall_payment.adapters.dramatiq.broker import BrokerSettings, broker_redis
from gmall_payment.adapters.metrics import METRICS_SETTING
from gmall_payment.adapters.redis import connect
from gmall_payment.plugins.alipay.config import CONFIRM_WITH_QUERY, GatewayConfig
from gmall_payment.plugins.mockpay.config import MockpayConfig
from gmall_payment.ports.settings import Setting, number
from gmall_payment.webapp.cli import main
from gmall_payment.webapp.production import Finding, check

# the one check for numbers


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        (5, float, 5.0),
        ("0.25", float, 0.25),
        (0, float, 0.0),
        (" 7 ", int, 7),
        (3.0, int, 3),
        ("12", int, 12),
    ],
)
def test_a_number_is_read_from_what_a_config_file_or_an_environment_gives(value, kind, expected):
    read = number(value, "SOME_SECONDS", kind=kind)
    assert read == expected and type(read) is kind


@pytest.mark.parametrize(
    ("value", "options", "message"),
    [
        ("soon", {"unit": "seconds"}, "SOME_SECONDS: 'soon' is not a number of seconds (must be >= 0)"),
        (-1, {}, "SOME_SECONDS: -1 is not a number >= 0"),
        (0, {"positive": True}, "SOME_SECONDS: 0 is not a number > 0"),
        (math.inf, {}, "SOME_SECONDS: inf is not a number"),
        (math.nan, {}, "SOME_SECONDS: nan is not a number"),
        (None, {}, "SOME_SECONDS: None is not a number"),
        (True, {}, "SOME_SECONDS: True is not a number"),
        (1.5, {"kind": int}, "SOME_SECONDS: 1.5 is not a whole number (must be >= 0)"),
        ("2.5", {"kind": int}, "SOME_SECONDS: '2.5' is not a whole number"),
    ],
)
def test_a_number_that_cannot_be_used_is_refused_naming_the_setting(value, options, message):
    with pytest.raises(ValueError) as error:
        number(value, "SOME_SECONDS", **options)
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("reader", "key", "value", "message"),
    [
        (LifecycleSettings, "RECONCILE_SECONDS", -5, "RECONCILE_SECONDS: -5 is not a number of seconds >= 0"),
        (LifecycleSettings, "EXPIRY_BATCH", 0, "EXPIRY_BATCH: 0 is not a whole number > 0"),
        (
            LifecycleSettings,
            "BILLS_FETCH_HOUR",
            24,
            "BILLS_FETCH_HOUR=24 is not an hour of the day (0 to 23)",
        ),
        (LifecycleSettings, "BILLS_FETCH_HOUR", "9.5", "BILLS_FETCH_HOUR: '9.5' is not a whole number"),
        (LifecycleSettings, "BILLS_FETCH", "maybe", "BILLS_FETCH must be true or false, got 'maybe'"),
        (BrokerSettings, "STEP_MAX_RETRIES", "many", "STEP_MAX_RETRIES: 'many' is not a whole number"),
        (
            BrokerSettings,
            "INPROCESS_WORKER_THREADS",
            2.5,
            "INPROCESS_WORKER_THREADS: 2.5 is not a whole number",
        ),
        (
            SeckillSettings,
            "SECKILL_TICK_SECONDS",
            "inf",
            "SECKILL_TICK_SECONDS: 'inf' is not a number of seconds",
        ),
        (
            MockpayConfig,
            "MOCKPAY_LATE_SECONDS",
            "later",
            "MOCKPAY_LATE_SECONDS: 'later' is not a number of seconds",
        ),
        (
            MockpayConfig,
            "MOCKPAY_NOTIFY_SCHEDULE",
            "0,x",
            "MOCKPAY_NOTIFY_SCHEDULE: 'x' is not a number of seconds",
        ),
        (
            GatewayConfig,
            "ALIPAY_SANDBOX_NOTIFY_SPEEDUP",
            0,
            "ALIPAY_SANDBOX_NOTIFY_SPEEDUP: 0 is not a number > 0",
        ),
    ],
)
def test_every_reader_checks_its_numbers_with_the_one_check(tmp_path, reader, key, value, message):
    with pytest.raises(ValueError) as error:
        reader.from_settings({"INSTANCE_PATH": str(tmp_path), key: value})
    assert message in str(error.value)


def test_a_webapp_number_that_cannot_be_used_stops_the_start(tmp_path):
    with pytest.raises(ValueError, match="READINESS_TIMEOUT_SECONDS: 0 is not a number of seconds > 0"):
        make_app(tmp_path, READINESS_TIMEOUT_SECONDS=0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("false", False),
        ("OFF", False),
        ("0", False),
        (" yes ", True),
        ("1", True),
        (True, True),
        (False, False),
    ],
)
def test_a_flag_is_read_from_what_a_config_file_or_an_environment_gives(value, expected):
    assert Setting("SOME_FLAG", not expected).read({"SOME_FLAG": value}) is expected


@pytest.mark.parametrize(
    "reader",
    [lambda s: Setting("ALIPAY_CONFIRM_WITH_QUERY", False).read(s), CONFIRM_WITH_QUERY.read],
)
def test_a_flag_that_is_neither_is_refused_naming_the_setting(reader):
    with pytest.raises(ValueError, match="ALIPAY_CONFIRM_WITH_QUERY must be true or false, got 'maybe'"):
        reader({"ALIPAY_CONFIRM_WITH_QUERY": "maybe"})


def test_metrics_false_as_text_is_off_for_the_workers_bootstrap_too():
    """bootstrap reads METRICS itself (a worker's settings may come as text): "false" is off."""
    assert METRICS_SETTING.read({"METRICS": "false"}) is False
    assert METRICS_SETTING.read({}) is True


def test_an_empty_setting_keeps_its_default():
    assert (
        LifecycleSettings.from_settings({"RECONCILE_SECONDS": "", "ORDER_PAY_TIMEOUT_SECONDS": None})
        == LifecycleSettings()
    )
    assert BrokerSettings.from_settings({"REDIS_NAMESPACE": ""}).namespace == "gmall"


def test_the_defaults_are_the_declared_ones():
    fields = {field.name: field for field in dataclasses.fields(LifecycleSettings)}
    spec = fields["order_pay_timeout_seconds"].metadata["setting"]
    assert spec == Setting("ORDER_PAY_TIMEOUT_SECONDS", 1800.0, positive=True, formerly="ORDER_PAY_TIMEOUT")
    assert LifecycleSettings.from_settings({}).order_pay_timeout_seconds == 1800.0 == spec.default


# ORDER_PAY_TIMEOUT, renamed ORDER_PAY_TIMEOUT_SECONDS


def test_the_new_name_is_read_without_a_warning(recwarn):
    assert (
        LifecycleSettings.from_settings({"ORDER_PAY_TIMEOUT_SECONDS": 90}).order_pay_timeout_seconds == 90.0
    )
    assert not [warning for warning in recwarn if issubclass(warning.category, DeprecationWarning)]


def test_the_old_name_still_works_and_warns_naming_both(caplog):
    with caplog.at_level(logging.WARNING), pytest.warns(DeprecationWarning) as warned:
        assert (
            LifecycleSettings.from_settings({"ORDER_PAY_TIMEOUT": "120"}).order_pay_timeout_seconds == 120.0
        )
    message = "ORDER_PAY_TIMEOUT is deprecated: rename it ORDER_PAY_TIMEOUT_SECONDS"
    assert message in str(warned[0].message) and message in caplog.text


def test_the_old_name_is_checked_as_the_new_one_is():
    with (
        pytest.warns(DeprecationWarning),
        pytest.raises(ValueError, match="ORDER_PAY_TIMEOUT_SECONDS: 0 is not"),
    ):
        LifecycleSettings.from_settings({"ORDER_PAY_TIMEOUT": 0})


def test_with_both_names_the_new_one_wins_and_the_old_is_said_to_be_ignored(caplog):
    with caplog.at_level(logging.WARNING), pytest.warns(DeprecationWarning) as warned:
        lifecycle = LifecycleSettings.from_settings(
            {"ORDER_PAY_TIMEOUT": 120, "ORDER_PAY_TIMEOUT_SECONDS": 60}
        )
    assert lifecycle.order_pay_timeout_seconds == 60.0
    message = "ORDER_PAY_TIMEOUT is deprecated and ignored: ORDER_PAY_TIMEOUT_SECONDS is set too"
    assert message in str(warned[0].message) and message in caplog.text


def test_a_shop_started_with_the_old_name_closes_orders_after_it(tmp_path, caplog):
    with caplog.at_level(logging.WARNING), pytest.warns(DeprecationWarning):
        app = make_app(tmp_path, ORDER_PAY_TIMEOUT=45)
    assert app.extensions["gmall"].order_expiry.timeout == timedelta(seconds=45)
    assert "ORDER_PAY_TIMEOUT is deprecated: rename it ORDER_PAY_TIMEOUT_SECONDS" in caplog.text


def test_the_production_check_names_the_old_name_as_a_warning():
    expected = Finding(
        "ORDER_PAY_TIMEOUT",
        "ORDER_PAY_TIMEOUT is deprecated: rename it ORDER_PAY_TIMEOUT_SECONDS "
        "(read as ORDER_PAY_TIMEOUT_SECONDS for now)",
        fatal=False,
    )
    assert expected in check({"ORDER_PAY_TIMEOUT": 60}, [])  # the embedded demo
    assert expected in check({"PRODUCTION": True, "ORDER_PAY_TIMEOUT": 60}, [])
    assert [f.setting for f in check({"ORDER_PAY_TIMEOUT_SECONDS": 60}, [])] == ["PRODUCTION"]


def test_gmall_payment_check_mentions_the_old_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.warns(DeprecationWarning):
        result = CliRunner().invoke(
            main,
            ["check"],
            env={"GMALL_INSTANCE_PATH": str(tmp_path / "instance"), "GMALL_ORDER_PAY_TIMEOUT": "60"},
        )
    assert "warning ORDER_PAY_TIMEOUT: ORDER_PAY_TIMEOUT is deprecated" in result.output


def test_gmall_payment_check_names_an_adapters_number_that_would_stop_the_start(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        main, ["check"], env={"GMALL_INSTANCE_PATH": str(tmp_path / "instance"), "GMALL_SECKILL_BATCH": "-3"}
    )
    assert result.exit_code == 1
    assert "FATAL settings: SECKILL_BATCH: -3 is not a whole number > 0" in result.output


# the composition root


def test_services_are_built_by_name_only(tmp_path):
    with pytest.raises(TypeError):
        Services(*range(len(dataclasses.fields(Services))))
    services = make_app(tmp_path).extensions["gmall"]
    assert isinstance(services.broker_settings, BrokerSettings)
    assert isinstance(services.lifecycle_settings, LifecycleSettings)
    assert isinstance(services.seckill_settings, SeckillSettings)
    assert services.order_expiry.timeout == timedelta(
        seconds=services.lifecycle_settings.order_pay_timeout_seconds
    )


def test_sentinels_without_redis_url_stop_the_start():
    with pytest.raises(ValueError, match="BROKER_SENTINELS needs REDIS_URL"):
        BrokerSettings.from_settings({"BROKER_SENTINELS": "127.0.0.1:26379"})
    with pytest.raises(ValueError, match="BROKER_SENTINELS: 'nowhere' is not host:port"):
        BrokerSettings.from_settings(
            {"REDIS_URL": "redis://x", "BROKER_SENTINELS": "127.0.0.1:26379,nowhere"}
        )


def test_a_cluster_url_needs_a_broker_of_its_own():
    cluster = "redis+cluster://127.0.0.1:7000,127.0.0.1:7001"
    with pytest.raises(ValueError, match="Dramatiq's broker cannot use a Redis Cluster"):
        BrokerSettings.from_settings({"REDIS_URL": cluster})
    with pytest.raises(ValueError, match="Dramatiq's broker cannot use a Redis Cluster"):
        BrokerSettings.from_settings({"REDIS_URL": "redis://x", "BROKER_REDIS_URL": cluster})
    with pytest.raises(ValueError, match="BROKER_REDIS_URL needs REDIS_URL too"):
        BrokerSettings.from_settings({"BROKER_REDIS_URL": "redis://x"})
    config = BrokerSettings.from_settings({"REDIS_URL": cluster, "BROKER_REDIS_URL": "redis://broker:6380/2"})
    assert broker_redis(config).connection_pool.connection_kwargs["port"] == 6380


def test_a_cluster_url_names_its_nodes():
    with pytest.raises(
        ValueError, match="REDIS_URL: 'nowhere' of 'redis\\+cluster://a:1,nowhere' is not host:port"
    ):
        connect("redis+cluster://a:1,nowhere")
    with pytest.raises(ValueError, match="names no node"):
        connect("redis+cluster://")
