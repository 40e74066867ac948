"""Whose sessions ended lately, as the click needs to know it: loaded from the database and kept
up to date by Redis, which announces every ended session to each web process
(``adapters/redis/sessions.py``).

The database holds the truth (``members.SessionEpochs``). A session cookie of an older
generation than its member's can exist only if the member's sessions ended within a cookie's
lifetime (``cookie_age``): each process keeps those members (with their generation) and trusts
anyone else's cookie without a read, so even a member's first click reads nothing (members are
never deleted: a signed cookie names one that exists). The members kept are trusted only

- while the process's subscription to the ended sessions is known to be alive (subscribed,
  and heard from within ``SILENT_SECONDS``): otherwise every click reads the database until it
  is subscribed and has loaded them again;
- after the messages already delivered to the subscription were applied (a read that does
  not wait: a logout answers only after Redis took its message, so a copied cookie's click
  sent after that finds the message there);
- while loaded from the database within SESSION_CACHE_SECONDS (and ``SILENT_SECONDS`` to do
  it): the subscriber loads them again that often, which bounds what a lost message costs (the
  logout could not publish: it logs a warning naming the member).

A member announced is kept as "ended, generation unknown" until a click reads it. A subscriber
(a daemon thread; a greenlet where gevent patched threads) subscribes, then loads, pings the
subscription every ``PING_SECONDS``, applies its messages between clicks, and subscribes again
after an error. Without a channel (no Redis: ``members set-password`` runs in a process of its
own, which no one would hear) or with SESSION_CACHE_SECONDS 0, every click reads the database.
"""

import logging
import threading
import time
from datetime import datetime, timedelta

from .metrics import METRICS

log = logging.getLogger(__name__)

#: How often the subscriber asks Redis for a sign of life, and applies what was delivered.
PING_SECONDS = 1.0
#: A subscription unheard from for this long (no answer to its pings) counts as lost; a load
#: this much overdue counts as failed.
SILENT_SECONDS = 3.0
#: How long the subscriber waits before subscribing again after an error.
RETRY_SECONDS = 1.0
#: The most members kept (about 100 bytes each): with more sessions ended within a cookie's
#: lifetime, nothing is trusted and every click reads the database (a warning says so).
ENTRIES = 200_000
#: Members whose sessions ended this much before a cookie's lifetime are loaded too: the
#: clocks of the hosts that wrote the times may be behind this one's.
CLOCK_SKEW = timedelta(minutes=5)
#: Not a generation: a member announced, to be read.
UNKNOWN = None


class SessionCache:
    """Whether a member's session generation is current, for cookies up to ``cookie_age``
    seconds old: ``read(member_id)`` (a ``members.SessionEpochs``) gives one member's, and
    ``read.ended_since(when)`` those of the members whose sessions ended since, loaded every
    ``max_age`` seconds while ``channel`` (a ``SessionChannel``, or None) is listened to."""

    def __init__(
        self, read, channel, max_age: float, cookie_age: float, clock=time.monotonic, now=datetime.now
    ):
        self.read, self.channel, self.max_age, self.clock, self.now = read, channel, max_age, clock, now
        self.window = timedelta(seconds=cookie_age) + timedelta(seconds=max_age) + CLOCK_SKEW
        self.enabled = channel is not None and max_age > 0
        self.lock = threading.Lock()
        self.recent: dict[int, int | None] = {}  # member -> generation (UNKNOWN: announced)
        self.announced: set[int] | None = None  # members announced while a load runs
        self.subscription = None  # the live subscription, else None: nothing is trusted
        self.heard = 0.0  # when the subscription last gave a sign of life
        self.loaded = None  # when the load now trusted began (clock), else None: nothing is trusted
        self.changes = 0  # members announced so far: a read made across one is not kept
        self.stopped = threading.Event()
        self.subscriber = None

    def current(self, member_id: int, generation) -> bool:
        """Whether ``generation`` (a cookie's) is the member's current one."""
        if not self.enabled or not isinstance(generation, int):
            METRICS.session_check("untrusted")
            return _same(self.read(member_id), generation)
        self.start()
        with self.lock:
            self._apply()
            trusted = self._trusted()
            if trusted and member_id not in self.recent:
                METRICS.session_check("trusted")
                return True  # no session of theirs ended within a cookie's lifetime
            known = self.recent.get(member_id) if trusted else UNKNOWN
            changes = self.changes
        if known is not UNKNOWN and generation <= known:
            METRICS.session_check("kept")
            return known == generation
        METRICS.session_check("read" if trusted else "untrusted")
        read = self.read(member_id)  # unknown, or the cookie is newer: what is known is stale
        if trusted and read is not None:
            with self.lock:
                if self.changes == changes and self._trusted():
                    self.recent[member_id] = read
        return _same(read, generation)

    def ended(self, member_id: int) -> None:
        """The member's sessions ended (call after the database's change committed): known here
        at once, then told to every other process."""
        with self.lock:
            self._announce(member_id)
        if self.channel is None:
            return
        try:
            self.channel.publish(member_id)
        except Exception:
            log.warning(
                "the end of member %s's sessions was not announced on Redis: other processes may "
                "let their old session click for up to SESSION_CACHE_SECONDS",
                member_id,
                exc_info=True,
            )

    @property
    def healthy(self) -> bool:
        """Whether the members kept are trusted now (subscribed and loaded)."""
        with self.lock:
            self._apply()
            return self._trusted()

    def open(self, count: int) -> None:
        """Connect the reads for ``count`` clicks at once, and start subscribing: a burst then
        opens no connection (unless Redis is lost meanwhile)."""
        self.read.open(count)
        self.start()

    def start(self) -> None:
        """Start the subscriber, once (the first click, or ``open_connections`` before it)."""
        if self.enabled and self.subscriber is None:
            with self.lock:
                if self.subscriber is None:
                    self.subscriber = threading.Thread(
                        target=self._subscribe, name="session-cache", daemon=True
                    )
                    self.subscriber.start()

    def close(self) -> None:
        """Stop the subscriber and close its subscription."""
        self.stopped.set()
        if self.subscriber is not None:
            self.subscriber.join(PING_SECONDS + RETRY_SECONDS)
        with self.lock:
            self._lost()

    def _subscribe(self):
        while not self.stopped.is_set():
            try:
                subscription = self.channel.subscribe()
            except Exception as error:
                log.warning(
                    "session cache: cannot subscribe on Redis (%s); the click reads the database", error
                )
                self.stopped.wait(RETRY_SECONDS)
                continue
            with self.lock:
                self.subscription, self.heard = subscription, self.clock()
            self._load(subscription)
            while not self.stopped.wait(PING_SECONDS):
                with self.lock:
                    if self.subscription is not subscription:
                        break  # lost meanwhile (a click found it closed)
                    self._apply()
                    if self.subscription is not None and self.clock() - self.heard > SILENT_SECONDS:
                        self._lost(f"no answer from Redis for {SILENT_SECONDS:g} s")
                    elif self.subscription is not None:
                        try:
                            subscription.ping()
                        except Exception as error:
                            self._lost(error)
                    due = self.subscription is not None and (
                        self.loaded is None or self.clock() - self.loaded >= self.max_age
                    )
                if due:
                    self._load(subscription)
        with self.lock:
            self._lost()

    def _load(self, subscription):
        """Load the members whose sessions ended within a cookie's lifetime, subscribed already
        (an end committed before the load is in it; one after, announced)."""
        with self.lock:
            self.announced, began = set(), self.clock()
        try:
            loaded = self.read.ended_since(self.now() - self.window)
        except Exception as error:
            loaded = error
        with self.lock:
            announced, self.announced = self.announced, None
            if self.subscription is not subscription:
                return
            if isinstance(loaded, Exception) or len(loaded) > ENTRIES:
                log.warning(
                    "session cache: cannot load the ended sessions (%s); the click reads the database",
                    loaded if isinstance(loaded, Exception) else f"{len(loaded)} members, over {ENTRIES}",
                )
                self.loaded, self.recent = None, {}
                return
            loaded.update(dict.fromkeys(announced, UNKNOWN))
            self.loaded, self.recent = began, loaded

    def _trusted(self) -> bool:
        """Subscribed, and loaded lately enough (the lock held)."""
        return (
            self.subscription is not None
            and self.loaded is not None
            and self.clock() - self.loaded < self.max_age + SILENT_SECONDS
        )

    def _apply(self):
        """Note the members named in the messages already delivered (the lock held)."""
        if self.subscription is None:
            return
        try:
            for member_id in self.subscription.received():
                self.heard = self.clock()
                if member_id is not None:
                    self._announce(member_id)
        except Exception as error:
            self._lost(error)

    def _announce(self, member_id):
        self.recent[member_id] = UNKNOWN
        if self.announced is not None:
            self.announced.add(member_id)
        self.changes += 1

    def _lost(self, why=None):
        """Trust nothing until subscribed and loaded again (the lock held)."""
        if self.subscription is None:
            return
        if why is not None:
            log.warning(
                "session cache: lost the subscription on Redis (%s); the click reads the database", why
            )
        self.subscription.close()
        self.subscription = None
        self.loaded = None
        self.recent = {}
        self.changes += 1


def _same(read, generation) -> bool:
    """Whether the generation read (None: no such member) is the cookie's."""
    return read is not None and read == generation
