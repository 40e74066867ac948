"""What ``init-db`` (``schema.upgrade``) does to each kind of database, on SQLite and MariaDB."""

import re
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from alembic import command
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, Table, insert, inspect, select, text

from gmall_payment.adapters.sql import schema
from gmall_payment.adapters.sql.models import Member, OutboxEvent, PaymentInfo, PaymentNotification, db

REVISIONS = ["0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008", "0009", "0010"]  # oldest first
HEAD = REVISIONS[-1]
LATER_INDEXES = {
    "ix_payment_flag",
    "ix_payment_owed",
    "ix_seckill_order_unreturned",
    "ix_seckill_sale_end",
}  # 0005's
AT = datetime(2024, 11, 11, 20, 0, 0, 123456)


def revision_of(engine):
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine):
    with engine.begin() as connection:
        return schema.upgrade(connection)


def assert_matches_the_models(engine):
    with engine.connect() as connection:
        assert schema.differences(connection, schema.target_metadata()) == []


def fill_old_shape(engine):
    """A member, an unpaid and a paid order with their payments, a sent event, a notification."""
    tables = schema.baseline().tables
    rows = {
        "ums_member": [dict(id=1, username="demo", password_hash="x", integration=10, growth=5)],
        "oms_order": [
            dict(
                id=1,
                order_sn="O1",
                member_id=1,
                status=0,
                total_amount=Decimal("12.3400"),
                pay_amount=Decimal("12.34"),
                integration=12,
                growth=12,
                create_time=AT,
            ),
            dict(
                id=2,
                order_sn="O2",
                member_id=1,
                status=1,
                total_amount=Decimal("99.9900"),
                pay_amount=Decimal("99.99"),
                integration=99,
                growth=99,
                create_time=AT,
            ),
        ],
        "payment_info": [
            dict(
                id=1,
                out_trade_no="T1",
                order_sn="O1",
                payment_type="mockpay",
                total_amount=Decimal("12.34"),
                subject="one",
                payment_status=0,
                create_time=AT,
            ),
            dict(
                id=2,
                out_trade_no="T2",
                order_sn="O2",
                payment_type="alipay",
                trade_no="2024X",
                total_amount=Decimal("99.99"),
                subject="two",
                payment_status=1,
                create_time=AT,
                callback_time=AT,
                callback_content="trade_status=TRADE_SUCCESS",
            ),
        ],
        "outbox_event": [
            dict(
                id=1,
                name="payment.succeeded",
                order_sn="O2",
                payload='{"order_sn": "O2"}',
                create_time=AT,
                sent_time=AT,
            )
        ],
        "payment_notification": [
            dict(
                id=1,
                provider="alipay",
                notify_id="n1",
                out_trade_no="T2",
                received_at=AT,
                verified=True,
                accepted=True,
                outcome="paid",
                raw="trade_status=TRADE_SUCCESS",
            )
        ],
    }
    with engine.begin() as connection:
        schema.baseline().create_all(connection)
        for table, values in rows.items():
            for row in values:  # one by one: a many-rows insert takes its columns from the first row
                connection.execute(insert(tables[table]).values(row))


def test_an_empty_database_gets_every_revision(engine):
    result = upgrade(engine)

    assert result.found == "empty"
    assert [step.split(":")[0] for step in result.applied] == REVISIONS
    assert revision_of(engine) == HEAD
    assert_matches_the_models(engine)


def test_a_database_of_today_s_create_all_is_stamped_head_and_not_touched(engine, statements):
    with engine.begin() as connection:
        db.metadata.create_all(connection)
        connection.execute(
            insert(PaymentInfo.__table__).values(
                out_trade_no="T1",
                order_sn="O1",
                payment_type="mockpay",
                total_amount=Decimal("1.00"),
                create_time=AT,
            )
        )
    statements.clear()

    result = upgrade(engine)

    assert result.found == f"unversioned, the tables of revision {HEAD}"
    assert result.applied == []
    assert revision_of(engine) == HEAD
    ddl = [s for s in statements if re.match(r"\s*(CREATE|ALTER|DROP)", s) and "alembic_version" not in s]
    assert ddl == [], "it must only stamp"
    with engine.connect() as connection:
        assert connection.scalar(select(PaymentInfo.out_trade_no)) == "T1"


def test_a_database_of_the_old_shape_is_upgraded_with_its_rows(engine):
    fill_old_shape(engine)
    before = datetime.now()

    result = upgrade(engine)

    assert result.found == "unversioned, the tables of revision 0001"
    assert [step.split(":")[0] for step in result.applied] == REVISIONS[1:]
    assert revision_of(engine) == HEAD
    assert_matches_the_models(engine)
    payments, outbox, notifications = (
        PaymentInfo.__table__,
        OutboxEvent.__table__,
        PaymentNotification.__table__,
    )
    with engine.connect() as connection:
        rows = connection.execute(select(payments).order_by(payments.c.id)).mappings().all()
        assert [(r.out_trade_no, r.total_amount, r.payment_status, r.trade_no) for r in rows] == [
            ("T1", Decimal("12.34"), 0, None),
            ("T2", Decimal("99.99"), 1, "2024X"),
        ]
        assert [(r.refund_reserved, r.refunded, r.query_attempts, r.refund_reason, r.flag) for r in rows] == [
            (Decimal("0"), Decimal("0"), 0, None, None)
        ] * 2
        unpaid, paid = rows
        assert (
            before - timedelta(seconds=1) <= unpaid.next_query_time <= datetime.now()
        )  # reconciled at the next pass
        assert paid.next_query_time is None
        assert paid.callback_time == AT
        assert connection.execute(select(outbox.c.sent_time, outbox.c.settled_time)).all() == [(AT, None)]
        assert connection.execute(select(notifications.c.outcome, notifications.c.source)).all() == [
            ("paid", "notify")
        ]
        assert connection.execute(text("SELECT order_sn, status FROM oms_order ORDER BY id")).all() == [
            ("O1", 0),
            ("O2", 1),
        ]
        assert connection.execute(text("SELECT username, integration FROM ums_member")).all() == [
            ("demo", 10)
        ]


def test_old_code_can_still_insert_between_expand_and_contract(engine):
    """At 0002 the new NOT NULL columns have server defaults: a host still running the old
    code inserts a payment without them."""
    fill_old_shape(engine)
    with engine.begin() as connection:
        command.stamp(schema.config(connection), schema.BASELINE)
        command.upgrade(schema.config(connection), "0002")
        connection.execute(
            insert(schema.baseline().tables["payment_info"]).values(
                id=3,
                out_trade_no="T3",
                order_sn="O3",
                payment_type="mockpay",
                total_amount=Decimal("5"),
                payment_status=0,
                create_time=AT,
            )
        )
        new_columns = select(PaymentInfo.refunded, PaymentInfo.query_attempts).where(PaymentInfo.id == 3)
        assert connection.execute(new_columns).one() == (Decimal("0"), 0)

    assert upgrade(engine).found == "at revision 0002"
    assert_matches_the_models(engine)


def test_a_database_at_a_revision_is_upgraded_from_there(engine):
    with engine.begin() as connection:
        command.upgrade(schema.config(connection), schema.BASELINE)

    result = upgrade(engine)

    assert result.found == "at revision 0001"
    assert [step.split(":")[0] for step in result.applied] == REVISIONS[1:]
    assert_matches_the_models(engine)


def stray_column(connection):
    db.metadata.create_all(connection)
    connection.execute(text("ALTER TABLE payment_info ADD COLUMN stray INTEGER"))


def new_tables_without_new_columns(connection):
    """An older create_all's tables, then the new code's init-db, without the README's ALTERs."""
    schema.baseline().create_all(connection)
    db.metadata.create_all(connection)


@pytest.mark.parametrize("make", [stray_column, new_tables_without_new_columns])
def test_a_database_of_another_shape_is_refused_unchanged(engine, make):
    with engine.begin() as connection:
        make(connection)
    with engine.connect() as connection:
        tables = sorted(inspect(connection).get_table_names())

    with pytest.raises(schema.UnknownSchema, match="nothing was changed") as refused:
        upgrade(engine)

    assert re.search(r"\n  (remove|add)_column payment_info\.(stray|refunded)(\n|$)", str(refused.value))
    with engine.connect() as connection:
        assert sorted(inspect(connection).get_table_names()) == tables  # no alembic_version either


def test_a_database_from_before_the_flash_sale_gets_its_tables_then_the_revisions(engine):
    fill_old_shape(engine)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE sms_seckill_order"))
        connection.execute(text("DROP TABLE sms_seckill_sale"))

    result = upgrade(engine)

    assert result.found == (
        "unversioned, the tables of revision 0001; "
        "made its missing tables sms_seckill_order, sms_seckill_sale"
    )
    assert [step.split(":")[0] for step in result.applied] == REVISIONS[1:]
    assert_matches_the_models(engine)
    with engine.connect() as connection:
        assert connection.execute(
            text("SELECT out_trade_no FROM payment_info ORDER BY id")
        ).scalars().all() == ["T1", "T2"]


def test_a_database_at_a_revision_unknown_here_is_refused_unchanged(engine):
    upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0999'"))

    with pytest.raises(schema.UnknownSchema, match="at revision 0999, which these migrations do not know"):
        upgrade(engine)

    assert revision_of(engine) == "0999"


def test_other_applications_tables_are_left_alone(engine):
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE other_app_sessions (id INTEGER PRIMARY KEY)"))
        db.metadata.create_all(connection)

    assert upgrade(engine).found == f"unversioned, the tables of revision {HEAD}"


def test_downgrade_to_the_baseline_and_up_again_keeps_the_rows(engine):
    fill_old_shape(engine)
    upgrade(engine)
    with engine.begin() as connection:
        command.downgrade(schema.config(connection), schema.BASELINE)
        assert schema.differences(connection, schema.baseline()) == []

    upgrade(engine)

    assert_matches_the_models(engine)
    with engine.connect() as connection:
        assert connection.execute(
            text("SELECT out_trade_no FROM payment_info ORDER BY id")
        ).scalars().all() == ["T1", "T2"]


@pytest.mark.mariadb
@pytest.mark.parametrize("engine", ["mariadb"], indirect=True)
def test_on_mariadb_columns_are_added_instantly_and_indexes_without_a_lock(engine, statements):
    fill_old_shape(engine)
    statements.clear()

    upgrade(engine)

    changes = [" ".join(s.split()) for s in statements if re.match(r"\s*(ALTER TABLE|CREATE INDEX)", s)]
    adds = [s for s in changes if "ADD COLUMN" in s]
    defaults = [s for s in changes if "DEFAULT" in s and "ADD COLUMN" not in s]
    indexes = [s for s in changes if s.startswith("CREATE INDEX")]
    assert len(adds) == 14 and len(defaults) == 4 and len(indexes) >= 3, changes
    assert all(s.endswith("ALGORITHM=INSTANT") for s in adds + defaults), changes
    assert all(s.endswith("ALGORITHM=INPLACE LOCK=NONE") for s in indexes), changes


def test_a_database_an_init_db_without_revisions_made_is_stamped_at_its_time_and_upgraded(engine):
    """Made by create_all before revisions existed (the models of 0003: no session generation,
    no index of 0005, no payment_type code, no kept headers, no bill runs, no count of units sold,
    no time of the sessions' end), with a member in it: stamped 0003, then 0004 adds the column,
    the member kept at generation 0, 0005 its indexes, 0006 and 0007 their columns, 0008 its
    table, 0009 and 0010 their columns."""
    with engine.begin() as connection:
        era = MetaData()
        for table in db.metadata.tables.values():
            table.to_metadata(era)
        for table in era.tables.values():
            for index in [index for index in table.indexes if index.name in LATER_INDEXES]:
                table.indexes.discard(index)
        era.remove(era.tables["payment_bill_run"])  # 0008's
        members = era.tables["ums_member"]
        era.remove(members)
        Table(
            "ums_member",
            era,
            *[c.copy() for c in members.columns if c.name not in ("session_epoch", "session_ended_time")],
        )
        era.create_all(connection)
        for table, column in (
            ("payment_info", "payment_type_code"),
            ("payment_notification", "headers"),
            ("sms_seckill_sale", "sold"),
            ("sms_seckill_sale", "gate_generation"),
        ):
            connection.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))  # 0006's, 0007's, 0009's
        connection.execute(
            text(
                "INSERT INTO ums_member (id, username, password_hash, integration, growth) "
                "VALUES (7, 'old', 'x', 10, 2)"
            )
        )
        result = schema.upgrade(connection)
    assert result.found == "unversioned, the tables of revision 0003"
    assert [step.split(":")[0] for step in result.applied] == REVISIONS[3:]
    assert revision_of(engine) == HEAD
    with engine.connect() as connection:
        assert connection.execute(
            text("SELECT username, session_epoch, session_ended_time FROM ums_member")
        ).all() == [("old", 0, None)]


def test_0006_fills_the_seed_s_payment_type_code_from_the_provider_s_name(engine):
    """Alipay 1, WeChat Pay 2 (the seed's tinyint), mockpay none; 0007 keeps no headers for the old notifications."""
    with engine.begin() as connection:
        command.upgrade(schema.config(connection), "0005")
        for number, provider in enumerate(("mockpay", "alipay", "wechatpay"), 1):
            connection.execute(
                text(
                    "INSERT INTO payment_info (out_trade_no, order_sn, payment_type, total_amount, payment_status, "
                    "create_time, refund_reserved, refunded, query_attempts) "
                    f"VALUES ('T{number}', 'O1', '{provider}', 1, 0, '2024-11-11 20:00:00', 0, 0, 0)"
                )
            )
        connection.execute(
            text(
                "INSERT INTO payment_notification (provider, received_at, verified, accepted, outcome, raw, source) "
                "VALUES ('wechatpay', '2024-11-11 20:00:00', 1, 1, 'paid', '{}', 'notify')"
            )
        )

    assert [step.split(":")[0] for step in upgrade(engine).applied] == REVISIONS[5:]

    assert_matches_the_models(engine)
    with engine.connect() as connection:
        assert connection.execute(
            text("SELECT payment_type, payment_type_code FROM payment_info ORDER BY id")
        ).all() == [("mockpay", None), ("alipay", 1), ("wechatpay", 2)]
        assert connection.execute(text("SELECT headers FROM payment_notification")).all() == [(None,)]
    with engine.begin() as connection:
        command.downgrade(schema.config(connection), "0005")
        assert "payment_type_code" not in {c["name"] for c in inspect(connection).get_columns("payment_info")}
        assert "headers" not in {c["name"] for c in inspect(connection).get_columns("payment_notification")}


def test_0009_counts_the_units_each_sale_s_orders_hold(engine):
    """Reservations holding a unit count; closed and abandoned ones (holding NULL) do not."""
    with engine.begin() as connection:
        command.upgrade(schema.config(connection), "0008")
        for sale_id in (1, 2):
            connection.execute(
                text(
                    "INSERT INTO sms_seckill_sale (id, sku_id, title, price, units, start_time, end_time) "
                    f"VALUES ({sale_id}, 7, 'sale', 1, 10, '2024-11-11 20:00:00', '2024-11-11 21:00:00')"
                )
            )
        for n, (sale_id, status, holding) in enumerate(
            [(1, 0, "1"), (1, 0, "1"), (1, 1, "NULL"), (1, 2, "NULL"), (2, 0, "1")]
        ):
            connection.execute(
                text(
                    "INSERT INTO sms_seckill_order (order_sn, sale_id, member_id, sku_id, status, holding, "
                    f"reserved_time) VALUES ('S{n}', {sale_id}, {n}, 7, {status}, {holding}, '2024-11-11 20:00:01')"
                )
            )

    assert [step.split(":")[0] for step in upgrade(engine).applied] == REVISIONS[8:]

    assert_matches_the_models(engine)
    with engine.connect() as connection:
        assert connection.execute(
            text("SELECT id, sold, gate_generation FROM sms_seckill_sale ORDER BY id")
        ).all() == [(1, 2, 0), (2, 1, 0)]


def test_0010_counts_the_members_whose_sessions_ended_before_as_ended_at_the_upgrade(engine):
    """Their cookies of an older generation may still be within their lifetime: the click must
    know them; a member whose sessions never ended gets no time."""
    with engine.begin() as connection:
        command.upgrade(schema.config(connection), "0009")
        for member_id, epoch in ((1, 0), (2, 3)):
            connection.execute(
                text(
                    "INSERT INTO ums_member (id, username, password_hash, integration, growth, session_epoch) "
                    f"VALUES ({member_id}, 'm{member_id}', 'x', 0, 0, {epoch})"
                )
            )
    before = datetime.now().replace(microsecond=0)

    assert [step.split(":")[0] for step in upgrade(engine).applied] == [HEAD]

    assert_matches_the_models(engine)
    with engine.connect() as connection:
        members = Member.__table__.c
        ended = dict(connection.execute(select(members.id, members.session_ended_time)).all())
    assert ended[1] is None
    assert before <= ended[2] <= datetime.now() + timedelta(seconds=1)
    with engine.begin() as connection:
        command.downgrade(schema.config(connection), "0009")
        assert "session_ended_time" not in {c["name"] for c in inspect(connection).get_columns("ums_member")}
