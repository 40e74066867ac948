"""Dramatiq adapters: the broker (Redis, or in-process on the embedded default), the
fulfilment actors, their middleware, and the message bus that sends to them.

Nothing here binds to Dramatiq's global broker at import time: ``make_broker`` builds the
broker from settings and ``declare_actors`` declares the actors on it, both called by the
composition root.
"""
