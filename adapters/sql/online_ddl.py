"""Schema changes on MySQL/MariaDB that run online or fail, instead of locking a big table.

Imported by the migrations' ``env.py``: from then on, in this process, Alembic's
``ADD COLUMN`` and ``ALTER COLUMN ... SET/DROP DEFAULT`` carry ``ALGORITHM=INSTANT`` (a
change of the table's metadata only, whatever its size) and ``CREATE INDEX`` carries
``ALGORITHM=INPLACE LOCK=NONE`` (built while reads and writes go on). Without them the server
silently falls back to copying the table under a lock when it cannot do better; with them
the statement fails at once ("ALGORITHM=INSTANT is not supported for this operation"), and
the revision must be rethought (see docs/deployment.md, "Schema changes") rather than take the
shop down. Other dialects are untouched.
"""

from alembic.ddl.base import AddColumn, visit_add_column
from alembic.ddl.mysql import MySQLAlterDefault, _mysql_alter_default
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import CreateIndex

INSTANT = "ALGORITHM=INSTANT"
INPLACE_UNLOCKED = "ALGORITHM=INPLACE LOCK=NONE"


@compiles(AddColumn, "mysql", "mariadb")
def _add_column_instantly(element, compiler, **kw):
    return f"{visit_add_column(element, compiler, **kw)}, {INSTANT}"


@compiles(MySQLAlterDefault, "mysql", "mariadb")
def _alter_default_instantly(element, compiler, **kw):
    return f"{_mysql_alter_default(element, compiler, **kw)}, {INSTANT}"


@compiles(CreateIndex, "mysql", "mariadb")
def _create_index_unlocked(element, compiler, **kw):
    return f"{compiler.visit_create_index(element, **kw)} {INPLACE_UNLOCKED}"
