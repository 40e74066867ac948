"""The message bus and the coordination primitives the flash sale will need."""

import abc

from ..core.events import Event


class MessageBus(abc.ABC):
    @abc.abstractmethod
    def publish(self, event: Event) -> None:
        """Hand ``event`` to the broker; raise if the broker did not accept it.

        The outbox relay marks an event sent only after this returns, so raising is how an
        adapter says "keep it and try again later".
        """


class Semaphore(abc.ABC):
    """A named counting semaphore shared by every web worker."""

    @abc.abstractmethod
    def try_set_permits(self, key: str, permits: int) -> bool:
        """Create the semaphore with ``permits`` unless it exists (never refills one)."""

    @abc.abstractmethod
    def try_acquire(self, key: str, permits: int = 1) -> bool:
        """Take permits without waiting; False when not enough are left or the key is missing."""

    @abc.abstractmethod
    def release(self, key: str, permits: int = 1) -> None:
        """Give permits back."""

    @abc.abstractmethod
    def available(self, key: str) -> int | None:
        """Permits left, or None when the semaphore does not exist."""


class Latch(abc.ABC):
    """A one-shot signal: one side opens it, others wait for it with a bound."""

    @abc.abstractmethod
    def open(self, *keys: str) -> None:
        """Release every current and future waiter of each of ``keys`` (at once: one round
        trip for a batch of orders)."""

    @abc.abstractmethod
    def wait(self, key: str, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds; True if the latch was opened."""
