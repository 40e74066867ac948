"""The members' session generations as the click reads them, remembered in the process while
Redis announces every ended session to it (``adapters/redis/sessions.py``).

The database holds the truth (``members.SessionEpochs``); this cache only saves reading it
for a member's next clicks. An entry is trusted only

- while the process's subscription to the ended sessions is known to be alive (subscribed,
  and heard from within ``SILENT_SECONDS``): otherwise the cache is emptied and every click
  reads the database until it is subscribed again;
- after the messages already delivered to the subscription were applied (a read that does
  not wait: a logout answers only after Redis took its message, so a copied cookie's click
  sent after that finds the message there);
- for at most SESSION_CACHE_SECONDS, which also bounds what a lost message costs (the
  logout could not publish: it logs a warning naming the member).

A subscriber (a daemon thread; a greenlet where gevent patched threads) pings the subscription
every ``PING_SECONDS``, applies its messages between clicks, and subscribes again after an
error. Without a channel (no Redis: ``members set-password`` runs in a process of its own,
which no one would hear) or with SESSION_CACHE_SECONDS 0 nothing is cached.
"""

import logging
import threading
import time

log = logging.getLogger(__name__)

#: How often the subscriber asks Redis for a sign of life, and applies what was delivered.
PING_SECONDS = 1.0
#: A subscription unheard from for this long (no answer to its pings) counts as lost.
SILENT_SECONDS = 3.0
#: How long the subscriber waits before subscribing again after an error.
RETRY_SECONDS = 1.0
#: The most members remembered; past it the oldest entry goes (about 150 bytes each).
ENTRIES = 100_000


class SessionCache:
    """``read(member_id)`` (a ``members.SessionEpochs``: the database's generation, None for no
    such member), remembered for ``max_age`` seconds while ``channel`` (a ``SessionChannel``, or
    None) is listened to."""

    def __init__(self, read, channel, max_age: float, clock=time.monotonic):
        self.read, self.channel, self.max_age, self.clock = read, channel, max_age, clock
        self.enabled = channel is not None and max_age > 0
        self.lock = threading.Lock()
        self.entries: dict[int, tuple[int | None, float]] = {}  # member -> (generation, until), oldest first
        self.subscription = None  # the live subscription, else None: nothing is trusted
        self.heard = 0.0  # when the subscription last gave a sign of life
        self.changes = 0  # entries dropped so far: a read made across a drop is not kept
        self.stopped = threading.Event()
        self.subscriber = None

    def __call__(self, member_id: int) -> int | None:
        """The member's current session generation."""
        if not self.enabled:
            return self.read(member_id)
        self.start()
        with self.lock:
            self._apply()
            healthy = self.subscription is not None
            entry = self.entries.get(member_id) if healthy else None
            changes, now = self.changes, self.clock()
        if entry is not None and now < entry[1]:
            return entry[0]
        generation = self.read(member_id)
        if healthy:
            with self.lock:
                if self.changes == changes and self.subscription is not None:
                    self.entries.pop(member_id, None)  # to the end: the entries stay oldest first
                    self.entries[member_id] = (generation, now + self.max_age)
                    if len(self.entries) > ENTRIES:
                        del self.entries[next(iter(self.entries))]
        return generation

    def ended(self, member_id: int) -> None:
        """The member's sessions ended (call after the database's change committed): forget the
        generation here at once, then tell every other process."""
        with self.lock:
            self._drop(member_id)
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
        """Whether entries are trusted now (subscribed)."""
        with self.lock:
            self._apply()
            return self.subscription is not None

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
        with self.lock:
            self._lost()

    def _apply(self):
        """Drop the entries of the members named in the messages already delivered (the lock held)."""
        if self.subscription is None:
            return
        try:
            for member_id in self.subscription.received():
                self.heard = self.clock()
                if member_id is not None:
                    self._drop(member_id)
        except Exception as error:
            self._lost(error)

    def _drop(self, member_id):
        self.entries.pop(member_id, None)
        self.changes += 1

    def _lost(self, why=None):
        """Trust nothing until subscribed again (the lock held)."""
        if self.subscription is None:
            return
        if why is not None:
            log.warning(
                "session cache: lost the subscription on Redis (%s); the click reads the database", why
            )
        self.subscription.close()
        self.subscription = None
        self.entries.clear()
        self.changes += 1
