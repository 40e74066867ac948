"""The message bus, and the latch the flash sale's pay step waits on until its order exists."""

import abc

from ..core.events import Event


class MessageBus(abc.ABC):
    @abc.abstractmethod
    def publish(self, event: Event) -> None:
        """Hand ``event`` to the broker; raise if the broker did not accept it.

        The outbox relay marks an event sent only after this returns, so raising is how an
        adapter says "keep it and try again later".
        """


class Latch(abc.ABC):
    """A one-shot signal: one side opens it, others wait for it with a bound."""

    @abc.abstractmethod
    def open(self, *keys: str) -> None:
        """Release every current and future waiter of each of ``keys`` (at once: one round
        trip for a batch of orders)."""

    @abc.abstractmethod
    def wait(self, key: str, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds; True if the latch was opened."""
