"""Members' credentials and sessions, kept in the database.

A member's ``session_epoch`` is the generation of their sessions: a session cookie carries
the generation it was signed in under, and counts only while it is the member's current one.
Logging out and a password change move it on, which ends every session signed in before —
copies of the cookie included — in every process, whatever happens to Redis; and say when
(``session_ended_time``): a cookie of an older generation outlives that by a cookie's lifetime
at most, so the click need only know the members whose sessions ended since
(``SessionEpochs.ended_since``).
"""

from datetime import datetime

from sqlalchemy import and_, bindparam, create_engine, or_, select, update
from werkzeug.security import generate_password_hash

from .engine import lookup_options, refuse_blocking_connections
from .models import Member, db

#: A new password's shortest length.
MIN_PASSWORD = 8


def end_sessions(member_id: int) -> None:
    """End every session of the member (commits); the caller then tells the click's caches
    of generations (``webapp.context.sessions_ended``)."""
    db.session.execute(
        update(Member)
        .where(Member.id == member_id)
        .values(session_epoch=Member.session_epoch + 1, session_ended_time=datetime.now())
    )
    db.session.commit()


def set_password(username: str, password: str) -> Member:
    """Give the member a new password and end their sessions (commits; the caller then tells
    the click's caches, as after ``end_sessions``); ValueError, and nothing changed, for an
    unknown member or a password too short."""
    member = db.session.scalar(select(Member).where(Member.username == username))
    if member is None:
        raise ValueError(f"no member named {username}")
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password has at least {MIN_PASSWORD} characters")
    member.password_hash = generate_password_hash(password)
    member.session_epoch = Member.session_epoch + 1
    member.session_ended_time = datetime.now()
    db.session.commit()
    return member


class SessionEpochs:
    """The members' current session generation, read by primary key outside any app context
    (the click's fast path), as cheaply as the driver allows: its own small pool on the shop's
    database (autocommit, no pre-ping, no rollback on return: one round trip per read) and the
    statement compiled once and run on the driver's cursor (SQLAlchemy's execution would
    double the read's CPU). A connection the server closed is found by the read itself, which
    is then made once more on a new connection."""

    QUERY = select(Member.session_epoch).where(Member.id == bindparam("member_id"))
    #: Those ended since, and those whose generation a process of the code before revision 0010
    #: moved without a time (during its deploy): two ranges of one index.
    ENDED = select(Member.id, Member.session_epoch).where(
        or_(
            Member.session_ended_time >= bindparam("since"),
            and_(Member.session_ended_time.is_(None), Member.session_epoch > 0),
        )
    )

    def __init__(self, url):
        self.engine = create_engine(url, **lookup_options(url))
        refuse_blocking_connections(self.engine)
        compiled = self.QUERY.compile(dialect=self.engine.dialect)
        self.sql, self.positional = str(compiled), compiled.positional

    def __call__(self, member_id: int) -> int | None:
        """The member's generation; None for no such member."""
        return self._read(member_id, again=True)

    def _read(self, member_id, again):
        connection, cursor = self.engine.raw_connection(), None
        try:
            cursor = connection.cursor()
            cursor.execute(self.sql, (member_id,) if self.positional else {"member_id": member_id})
            row = cursor.fetchone()
            cursor.close()
        except self.engine.dialect.loaded_dbapi.Error as error:
            if not (again and self.engine.dialect.is_disconnect(error, connection.dbapi_connection, cursor)):
                raise
            connection.invalidate(error)  # the server closed it: once more, on a new connection
            return self._read(member_id, again=False)
        finally:
            connection.close()  # back to the pool (an invalidated one is dropped)
        return None if row is None else row[0]

    def ended_since(self, since: datetime) -> dict[int, int]:
        """The generation of each member whose sessions ended at ``since`` or later, or at a
        time not written (``ENDED``; an indexed read of those members only)."""
        with self.engine.connect() as connection:
            return dict(connection.execute(self.ENDED, {"since": since}).all())

    def open(self, count: int) -> None:
        """Connect now up to ``count`` of the pool's connections (no more than it keeps), so that
        as many reads at once connect nothing."""
        size = getattr(self.engine.pool, "size", None)
        connections = [self.engine.raw_connection() for _ in range(min(count, size()))] if size else []
        for connection in connections:
            connection.close()  # back to the pool, connected

    def close(self) -> None:
        self.engine.dispose()
