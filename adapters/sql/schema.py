"""The database schema under Alembic (revisions in ``migrations/``): upgrade to the newest, and
take over a database made before revisions existed (by ``create_all``) by recognising its shape.

A database without ``alembic_version`` is empty (every revision runs), or has exactly the
models' tables (stamped head), or exactly the baseline's (stamped 0001, then upgraded), less
perhaps whole tables, which are made first as the older init-db (``create_all``) made them; any
other is refused with its differences, changing nothing: stamping it would be a guess.
"""

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, inspect

from . import seckill  # noqa: F401  its tables join db.metadata
from .models import db

MIGRATIONS = Path(__file__).with_name("migrations")
BASELINE = "0001"
#: The last revision whose schema an init-db without revisions (``create_all``) could make.
CREATE_ALL_ERA = "0003"
#: How a database is compared with the models, by ``revision --autogenerate``, the drift test and
#: ``upgrade``: column types as each dialect spells them (DECIMAL(18,4), DATETIME(6), the VARCHAR(40)
#: of amounts on SQLite) and server defaults (a database has those the models declare, no others).
COMPARE = {"compare_type": True, "compare_server_default": True}


def target_metadata() -> MetaData:
    """Every table of the shop: what the newest revision must produce."""
    return db.metadata


def baseline() -> MetaData:
    """The tables of the baseline revision, as the revision itself defines them."""
    return ScriptDirectory.from_config(config()).get_revision(BASELINE).module.schema()


#: What ``added_since`` says of a table a later revision made whole.
WHOLE_TABLE = "*"


def added_since(scripts, revision: str) -> dict[str, set[str]]:
    """The columns and indexes each revision after ``revision`` says it added (``ADDED_COLUMNS``,
    ``ADDED_INDEXES``), by table, and the tables it made (``ADDED_TABLES``: ``WHOLE_TABLE``): a
    database made at ``revision`` is the models less these. A later revision that changes more
    than that must say so here, or a database of that time is refused rather than stamped."""
    added: dict[str, set[str]] = {}
    for script in scripts.iterate_revisions("head", revision):
        if script.revision != revision:
            for kind in ("ADDED_COLUMNS", "ADDED_INDEXES"):
                for table, names in getattr(script.module, kind, {}).items():
                    added.setdefault(table, set()).update(names)
            for table in getattr(script.module, "ADDED_TABLES", ()):
                added.setdefault(table, set()).add(WHOLE_TABLE)
    return added


class UnknownSchema(Exception):
    """A database ``upgrade`` cannot place: of another shape, or at a revision it does not know."""


@dataclass(frozen=True)
class Upgrade:
    found: str  # what the database was
    applied: list  # "revision: what it does", oldest first


def config(connection=None) -> Config:
    """Alembic's configuration for the shop's migrations, on ``connection``; logging left alone."""
    alembic_config = Config(str(MIGRATIONS / "alembic.ini"))
    alembic_config.set_main_option("script_location", str(MIGRATIONS))
    alembic_config.attributes.update(connection=connection, configure_logger=False)
    return alembic_config


def differences(connection, metadata: MetaData, include_name=None, absent=None) -> list:
    """What autogenerate would change to make the database look like ``metadata``, but for the
    columns, indexes and whole tables ``absent`` names by table (those the database is expected
    not to have: ``added_since``)."""
    options = {**COMPARE, "include_name": include_name} if include_name else dict(COMPARE)
    if absent:

        def include_object(item, name, type_, reflected, _other):
            if reflected:
                return True
            if type_ == "table":
                return WHOLE_TABLE not in absent.get(name, ())
            expected = absent.get(item.table.name, ())
            return not (type_ in ("column", "index") and (name in expected or WHOLE_TABLE in expected))

        options["include_object"] = include_object
    return compare_metadata(MigrationContext.configure(connection, opts=options), metadata)


def upgrade(connection) -> Upgrade:
    """Upgrade the database to the newest revision, stamping an unversioned one first.

    Raises ``UnknownSchema`` (nothing changed) for a database it cannot place.
    """
    alembic_config = config(connection)
    scripts = ScriptDirectory.from_config(alembic_config)
    current = MigrationContext.configure(connection).get_current_revision()
    if current is not None:
        if current not in {script.revision for script in scripts.walk_revisions()}:
            raise UnknownSchema(
                f"the database is at revision {current}, which these migrations do not know "
                f"(made by a newer gmall-payment?); nothing was changed"
            )
        found = f"at revision {current}"
    else:
        current, found = _recognise(connection, scripts)
        if current is not None:
            command.stamp(alembic_config, current)
    pending = reversed(list(scripts.iterate_revisions("head", current or "base")))
    applied = [f"{script.revision}: {script.doc}" for script in pending]
    command.upgrade(alembic_config, "head")
    return Upgrade(found, applied)


def _recognise(connection, scripts) -> tuple:
    """(revision to stamp or None for an empty database, what it was) of an unversioned database."""
    shapes = {
        scripts.get_current_head(): (target_metadata(), None),
        CREATE_ALL_ERA: (target_metadata(), added_since(scripts, CREATE_ALL_ERA)),
        BASELINE: (baseline(), None),
    }
    ours = {name for metadata, _ in shapes.values() for name in metadata.tables}
    tables = ours & set(inspect(connection).get_table_names())
    if not tables:
        return None, "empty"

    def include_name(name, type_, _parent):  # tables of other applications are not ours to judge
        return type_ != "table" or name in ours

    for revision, (metadata, absent) in shapes.items():
        diffs = differences(connection, metadata, include_name, absent)
        missing = sorted(diff[1].name for diff in diffs if diff[0] == "add_table")
        if all(_of_a_missing_table(diff, missing) for diff in diffs):
            # what an older init-db (create_all) did: make the tables it did not have yet
            metadata.create_all(connection, tables=[metadata.tables[name] for name in missing])
            made = f"; made its missing tables {', '.join(missing)}" if missing else ""
            return revision, f"unversioned, the tables of revision {revision}{made}"
    found = "\n".join(
        f"  {_describe(diff)}" for diff in differences(connection, target_metadata(), include_name)
    )
    raise UnknownSchema(
        f"the database has {len(tables)} of the shop's tables but no alembic_version, and they are neither "
        f"the models' tables nor the baseline's ({BASELINE}); nothing was changed. "
        f"Differences from the models:\n{found}"
    )


def _of_a_missing_table(diff, missing) -> bool:
    return diff[0] == "add_table" or (diff[0] == "add_index" and diff[1].table.name in missing)


def _describe(diff) -> str:
    """One of compare_metadata's differences, in a line."""
    if isinstance(diff, list):  # a column's changes: (kind, schema, table, column, existing, old, new)
        return "; ".join(
            f"{kind} {table}.{column}: {old!r} -> {new!r}"
            for kind, _schema, table, column, _existing, old, new in diff
        )
    kind, thing = diff[0], diff[-1]
    if kind.endswith("_table"):
        return f"{kind} {thing.name}"
    if kind.endswith("_column"):
        return f"{kind} {diff[2]}.{thing.name}"
    return f"{kind} {getattr(thing, 'name', thing)} on {thing.table.name}"  # indexes and constraints
