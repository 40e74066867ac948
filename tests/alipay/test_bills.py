"""Alipay's daily bills: the file as Alipay writes it, the offline gateway's bills, and bill runs
end to end, the lost notify that only the bill finds among them."""

import io
import json
import zipfile
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from support.alipay import a_payment, open_cashier, pay_on_cashier, start_on_cashier
from support.forms import operator_login
from support.servers import serving
from support.shop import make_app, member_orders, notify_log, wait_for

from gmall_payment.adapters.bootstrap import BILLS_CHECK_SECONDS
from gmall_payment.adapters.dramatiq.broker import Periodic
from gmall_payment.core.bills import REFUND, TRADE
from gmall_payment.core.errors import ProviderError
from gmall_payment.core.model import PaymentStatus, RefundReason, RefundStatus
from gmall_payment.plugins.alipay import bill_file
from gmall_payment.plugins.alipay.bill_file import Entry
from gmall_payment.plugins.alipay.client import beijing_now

DAY = date(2019, 9, 16)
#: A bill in the layout of Alipay's 业务明细 (as public parsers of it read it), its data made up.
ALIPAY_DETAIL = """#支付宝业务明细查询
#账号：[20880211096256330156]
#起始日期：[2019年09月16日 00:00:00]   终止日期：[2019年09月17日 00:00:00]
#-----------------------------------------业务明细列表----------------------------------------
支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注
2019091622001458860515315453\t,service_1568601259302\t,交易\t,下单测试,2019-09-16 10:55:16,2019-09-16 10:55:23,\t,\t,\t,\t,*津水(602***@qq.com)\t,12.30,12.30,0.00,0.00,0.00,0.00,0.00,,0.00\t,0.00,\t,0.00,0.00,下单测试
2019091622001458860515315453\t,service_1568601259302\t,退款\t,下单测试,2019-09-16 10:55:16,2019-09-16 10:56:48,\t,\t,\t,\t,*津水(602***@qq.com)\t,-2.30,-2.30,0.00,0.00,0.00,0.00,0.00,,0.00\t,0.00,re_test_1568602607356\t,0.00,0.00,下单测试
#-----------------------------------------业务明细列表结束------------------------------------
#交易合计：1笔，商家实收共12.30元，商家优惠共0.00元
#退款合计：1笔，商家实收退款共-2.30元，商家优惠退款共0.00元
#导出时间：[2019年09月17日 05:46:49]
"""


def zipped(text: str, name="20880211096256330156_20190916_业务明细.csv") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, text.replace("\n", "\r\n").encode("gbk"))
    return buffer.getvalue()


def test_alipay_s_layout_is_read_by_its_column_names_in_gbk():
    bill = bill_file.read(zipped(ALIPAY_DETAIL), "alipay", DAY)

    paid, refunded = bill.lines
    assert (paid.kind, paid.out_trade_no, paid.trade_no, paid.amount, paid.request_no) == (
        TRADE,
        "service_1568601259302",
        "2019091622001458860515315453",
        Decimal("12.30"),
        "",
    )
    assert (refunded.kind, refunded.amount, refunded.request_no) == (
        REFUND,
        Decimal("2.30"),
        "re_test_1568602607356",
    )
    assert paid.finished_at == bill_file.shop_time(datetime(2019, 9, 16, 10, 55, 23))
    assert (bill.starts, bill.ends) == (
        bill_file.shop_time(datetime(2019, 9, 16)),
        bill_file.shop_time(datetime(2019, 9, 17)),
    )
    assert json.loads(paid.raw)["商品名称"] == "下单测试"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (
            ("#交易合计：1笔，商家实收共12.30元", "#交易合计：2笔，商家实收共12.30元"),
            "trade total says 2 lines",
        ),
        (("#退款合计：1笔，商家实收退款共-2.30元", "#退款合计：1笔，商家实收退款共-2.31元"), "refund total"),
        ((",订单金额（元）,", ",金额,"), "lacks the columns 订单金额（元）"),
        (("[2019年09月16日 00:00:00]", "[2019年09月15日 00:00:00]"), "got the one of 2019-09-15"),
        (
            (
                "#-----------------------------------------业务明细列表结束------------------------------------\n",
                "",
            ),
            "end line",
        ),
        (("12.30,12.30", "12.305,12.30"), "more than two decimal places"),
    ],
)
def test_a_bill_not_as_alipay_writes_it_is_refused(change, error):
    with pytest.raises(ProviderError, match=error):
        bill_file.read(zipped(ALIPAY_DETAIL.replace(*change)), "alipay", DAY)


def test_a_file_that_is_no_zip_of_a_detail_is_refused():
    with pytest.raises(ProviderError, match="not a zip"):
        bill_file.read(b"<html>expired</html>", "alipay", DAY)
    with pytest.raises(ProviderError, match="holds 0 业务明细 files"):
        bill_file.read(zipped("#支付宝业务汇总查询\n"), "alipay", DAY)


def test_the_gateway_writes_the_zip_alipay_serves():
    entries = [
        Entry(
            TRADE,
            "2019091622001",
            "T-1",
            "谷粒商城-手机",
            datetime(2019, 9, 16, 9),
            datetime(2019, 9, 16, 9, 1),
            Decimal("12.30"),
        ),
        Entry(
            REFUND,
            "2019091622001",
            "T-1",
            "谷粒商城-手机",
            datetime(2019, 9, 16, 9),
            datetime(2019, 9, 16, 10),
            Decimal("2.30"),
            request_no="R-1",
        ),
    ]

    data = bill_file.write("2088000000000777", DAY, entries, datetime(2019, 9, 17, 5, 46, 49))

    archive = zipfile.ZipFile(io.BytesIO(data))
    names = [info.filename.encode("cp437").decode("gbk") for info in archive.infolist()]
    assert names == [
        "20880000000007770156_20190916_业务明细.csv",
        "20880000000007770156_20190916_业务明细(汇总).csv",
    ]
    assert not any(info.flag_bits & 0x800 for info in archive.infolist())  # GBK names, not marked UTF-8
    detail, summary = (archive.read(info).decode("gbk") for info in archive.infolist())
    lines = detail.split("\r\n")
    assert lines[:4] == ALIPAY_DETAIL.replace("20880211096256330156", "20880000000007770156").split("\n")[:4]
    assert lines[5].startswith(
        "2019091622001\t,T-1\t,交易\t,谷粒商城-手机,2019-09-16 09:00:00,2019-09-16 09:01:00,"
    )
    assert ",-2.30,-2.30," in lines[6] and ",R-1\t," in lines[6]
    assert lines[7:11] == [
        bill_file.DETAIL_END,
        "#交易合计：1笔，商家实收共12.30元，商家优惠共0.00元",
        "#退款合计：1笔，商家实收退款共-2.30元，商家优惠退款共0.00元",
        "#导出时间：[2019年09月17日 05:46:49]",
    ]
    assert summary.startswith("#支付宝业务汇总查询\r\n#账号：[20880000000007770156]\r\n")
    assert "\r\n合计,,1,1,10.00,10.00," in summary
    with pytest.raises(UnicodeDecodeError):
        archive.read(archive.infolist()[0]).decode("utf-8")  # GBK, as Alipay's
    assert [line.amount for line in bill_file.read(data, "alipay", DAY).lines] == [
        Decimal("12.30"),
        Decimal("2.30"),
    ]


def test_the_gateway_bills_its_trades_of_the_day_and_refuses_days_to_come(provider, gateway):
    payment = a_payment()
    cashier = open_cashier(provider, payment, "http://127.0.0.1:9/notify")
    pay_on_cashier(cashier, scenario="lost")
    provider.refund(payment, Decimal("3.45"), "R-1")
    today = beijing_now().date()

    bill = provider.daily_bill(today)  # the SDK's signed query, then the zip from bill_download_url over HTTP

    trade = gateway.ledger.get(payment.out_trade_no)
    assert [
        (line.kind, line.out_trade_no, line.trade_no, line.amount, line.request_no) for line in bill.lines
    ] == [
        (TRADE, payment.out_trade_no, trade.trade_no, Decimal("123.45"), ""),
        (REFUND, payment.out_trade_no, trade.trade_no, Decimal("3.45"), "R-1"),
    ]
    assert provider.daily_bill(today - timedelta(days=1)).lines == ()
    with pytest.raises(ProviderError, match="isp.bill_not_exist"):
        provider.daily_bill(today + timedelta(days=1))


def bills_fetch(app, day):
    result = app.test_cli_runner().invoke(args=["bills", "fetch", "--date", f"{day:%Y-%m-%d}"])
    app.extensions["gmall"].bus.join()
    return result


def the_payment(app, order_sn):
    with app.app_context():
        [payment] = app.extensions["gmall"].payments.uow().payments.for_order(order_sn)
        return payment


@pytest.mark.settings(RECONCILE_SECONDS=0)
def test_a_lost_notify_only_the_bill_finds_is_repaired_once(shop):
    """The gateway on its own server, the shop against it, reconciliation off: the notify is lost,
    nobody asks, and the next morning's bill repairs the payment as a query's answer would."""
    app, gateway, base_url = shop
    order_sn = member_orders(app)[0]
    browser, cashier = start_on_cashier(app, base_url, order_sn)
    pay_on_cashier(cashier, scenario="lost")
    assert gateway.notifier.join(5)
    assert the_payment(app, order_sn).payment_status is PaymentStatus.UNPAID
    day = gateway.ledger.get(order_sn).gmt_payment.date()

    first = bills_fetch(app, day)
    second = bills_fetch(app, day)

    view = wait_for(lambda: browser.get(f"{base_url}/api/orders/{order_sn}").json())
    assert first.exit_code == 0, first.output
    assert f"alipay {day}: 1 trade and 0 refund line(s), 0 matched, 1 repaired" in first.output
    assert (
        f"paid at alipay (trade {gateway.ledger.get(order_sn).trade_no}), unpaid here: paid" in first.output
    )
    assert f"alipay {day}: 1 trade and 0 refund line(s), 1 matched, 0 repaired" in second.output
    payment = the_payment(app, order_sn)
    assert (payment.payment_status, payment.trade_no) == (
        PaymentStatus.PAID,
        gateway.ledger.get(order_sn).trade_no,
    )
    assert payment.callback_time == bill_file.shop_time(
        gateway.ledger.get(order_sn).gmt_payment.replace(microsecond=0)
    )
    assert [(e.source, e.outcome) for e in notify_log(app)] == [("bill", "paid")]
    assert view["status"] == "awaiting_shipment" and view["points_awarded"]  # fulfilled, once


def test_the_embedded_shop_records_a_refund_made_in_alipay_s_console(tmp_path):
    """The mounted gateway, read in process: a refund made there and not here is recorded and flagged."""
    app = make_app(tmp_path, ALIPAY_SANDBOX_NOTIFY_SPEEDUP=24000, RECONCILE_SECONDS=0)
    with serving(app) as base_url:
        app.config["PUBLIC_URL"] = base_url
        order_sn = member_orders(app)[0]
        _, cashier = start_on_cashier(app, base_url, order_sn)
        pay_on_cashier(cashier)
        wait_for(lambda: the_payment(app, order_sn).payment_status is PaymentStatus.PAID)
        provider = app.extensions["gmall"].providers.get("alipay")
        with app.app_context():  # in Alipay's console: straight to the gateway, not through the shop
            provider.refund(the_payment(app, order_sn), Decimal("1.00"), "CONSOLE-1")
        day = beijing_now().date()

        first = bills_fetch(app, day)
        second = bills_fetch(app, day)
        token = app.config["OPERATOR_TOKEN"]
        api = app.test_client().get("/api/operator/bills", headers={"Authorization": f"Bearer {token}"})
        operator = app.test_client()
        operator_login(operator, token)
        page = operator.get("/operator/bills").get_data(as_text=True)
        app.extensions["gmall"].bus.close()

    assert first.exit_code == 0, first.output
    assert "1 matched, 0 repaired, 1 refund(s) recorded, 1 difference(s)" in first.output
    assert "2 matched, 0 repaired, 0 refund(s) recorded, 0 difference(s)" in second.output
    payment = the_payment(app, order_sn)
    assert payment.payment_status is PaymentStatus.PARTIALLY_REFUNDED and payment.refunded == Decimal("1.00")
    assert "CONSOLE-1" in payment.flag and "never asked for" in payment.flag
    with app.app_context():
        [refund] = app.extensions["gmall"].refunds.refunds(payment.id)
    assert (refund.out_request_no, refund.status, refund.reason) == (
        "CONSOLE-1",
        RefundStatus.SUCCEEDED,
        RefundReason.OUTSIDE,
    )
    assert 'id="nav-bills"' in page and page.count('<tr id="bill-run-') == 2
    assert "CONSOLE-1" in page and "已对账 done" in page
    runs = api.get_json()["bill_runs"]
    assert [(r["bill_date"], r["refunds_recorded"], len(r["differences"])) for r in runs] == [
        (f"{day}", 0, 0),
        (f"{day}", 1, 1),
    ]


@pytest.mark.parametrize("fetch", ["true", "false"])
def test_the_workers_read_yesterday_s_bills_each_morning_only_with_bills_fetch(tmp_path, fetch):
    app = make_app(tmp_path, BILLS_FETCH=fetch, BILLS_FETCH_HOUR=0)
    [periodic] = [m for m in app.extensions["gmall"].broker.middleware if isinstance(m, Periodic)]
    if fetch == "false":
        assert "bills" not in periodic.jobs
        return
    job, interval, at_boot = periodic.jobs["bills"]
    assert (interval, at_boot) == (BILLS_CHECK_SECONDS, False)

    job()
    job()  # read already: not again

    with app.app_context():
        runs = app.extensions["gmall"].bills.runs()
    yesterday = datetime.now().date() - timedelta(days=1)
    assert [(run.provider, run.bill_date, run.outcome) for run in runs] == [("alipay", yesterday, "done")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--date", "2024-13-01"], "'2024-13-01' is not a day written YYYY-MM-DD"),
        (["--date", "2024-11-11", "--provider", "mockpay"], "mockpay keeps no bills"),
        (["--date", "2024-11-11", "--provider", "nopay"], "nopay"),
    ],
)
def test_bills_fetch_refuses_a_bad_day_or_a_provider_without_bills_recording_nothing(app, args, message):
    result = app.test_cli_runner().invoke(args=["bills", "fetch", *args])

    assert result.exit_code != 0 and message in result.output
    with app.app_context():
        assert app.extensions["gmall"].bills.runs() == []
    assert "no bill run yet" in app.test_cli_runner().invoke(args=["bills", "list"]).output


def test_bills_fetch_of_a_day_to_come_is_a_failed_run_and_exits_1(app):
    tomorrow = beijing_now().date() + timedelta(days=1)

    result = bills_fetch(app, tomorrow)

    assert result.exit_code == 1
    assert f"alipay {tomorrow}: failed at" in result.output and "isp.bill_not_exist" in result.output
    listed = app.test_cli_runner().invoke(args=["bills", "list"]).output
    assert f"alipay {tomorrow}: failed" in listed
