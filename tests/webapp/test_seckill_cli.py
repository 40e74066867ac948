"""`gmall-payment seckill create/list/preheat`: an operator's sales; bad input changes nothing."""

import pytest


def seckill(app, *args):
    return app.test_cli_runner().invoke(args=["seckill", *args])


def listed(app, days="40000"):
    return [
        line for line in seckill(app, "list", "--days", days).output.splitlines() if line.startswith("sale ")
    ]


def test_create_then_list(app):
    [demo] = listed(app, "1")  # the demo's sale
    result = seckill(
        app,
        "create",
        "--sku",
        "1001",
        "--title",
        "双十一 Mate 60",
        "--price",
        "4999",
        "--units",
        "50",
        "--start",
        "2099-11-11T20:00:00",
        "--end",
        "2099-11-11T21:00:00",
    )

    assert result.exit_code == 0, result.output
    assert (
        "SKU 1001 双十一 Mate 60 ¥4999.00 × 50, 2099-11-11 20:00:00 .. 2099-11-11 21:00:00" in result.output
    )
    embedded = (
        "left: counted in the web server's process (the embedded gate, no GMALL_REDIS_URL): see /seckill"
    )
    assert demo.startswith("sale 1: SKU 1004 ") and demo.endswith(embedded)  # not this process's gate
    assert listed(app) == [
        demo,
        "sale 2: SKU 1001 双十一 Mate 60 ¥4999.00 × 50, 2099-11-11 20:00:00 .. "
        f"2099-11-11 21:00:00, {embedded}",
    ]
    assert listed(app, "1") == [demo]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--price", "0.001"], "more than two decimal places"),
        (["--price", "cheap"], "not an amount"),
        (["--units", "0"], "units must be"),
        (["--end", "2099-11-11T19:00:00"], "must end after it starts"),
        (["--sku", "424242"], "no stock row"),
        (
            ["--sku", "1004", "--start", "2000-01-01T00:00:00", "--end", "2099-01-01T00:00:00"],
            "on sale",
        ),  # the demo's
    ],
)
def test_a_sale_that_cannot_be_is_refused_and_nothing_is_stored(app, args, error):
    base = {
        "--sku": "1001",
        "--title": "t",
        "--price": "1.00",
        "--units": "5",
        "--start": "2099-11-11T20:00:00",
        "--end": "2099-11-11T21:00:00",
    }
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    before = seckill(app, "list", "--days", "40000").output

    result = seckill(app, "create", *[part for pair in base.items() for part in pair])
    assert result.exit_code == 2 and error in result.output
    assert seckill(app, "list", "--days", "40000").output == before


def test_preheat_needs_redis_in_the_embedded_default(app):
    result = seckill(app, "preheat", "1")
    assert result.exit_code == 2 and "preheats its sales itself" in result.output
