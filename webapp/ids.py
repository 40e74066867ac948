"""The ``<id:...>`` URL converter: a row id the database can hold, else no route (404).

Werkzeug's ``int`` takes any number of digits, and 2^63 reaches the database as an
OverflowError (SQLite) or an error of the server; ids are signed 64-bit (BIGINT) everywhere.
"""

from werkzeug.routing import IntegerConverter

#: The largest id of a BIGINT (and of SQLite's INTEGER).
MAX_ID = 2**63 - 1


class IdConverter(IntegerConverter):
    """``int`` bounded to the ids the database holds: 1 to ``MAX_ID``."""

    def __init__(self, map, min=1, max=MAX_ID):
        super().__init__(map, min=min, max=max)
