"""Tests that start a Dramatiq worker (threads, sleeps, retries with backoff) in process, on
Dramatiq's StubBroker over the in-process store: seconds, not milliseconds. The store and the
orders are the unit tests' (tests/unit/conftest.py)."""

from unit.conftest import db, make_order  # noqa: F401 (fixtures)
