"""Message buses for tests: they keep what is published instead of sending it."""

from gmall_payment.ports.messaging import MessageBus


class RecordingBus(MessageBus):
    """Keeps each event published in ``published``; the ``fail_on``-th publish (1-based) raises."""

    def __init__(self, fail_on=None):
        self.published = []
        self.calls = 0
        self.fail_on = fail_on

    def publish(self, event):
        self.calls += 1
        if self.calls == self.fail_on:
            raise ConnectionError("broker went away")
        self.published.append(event)
