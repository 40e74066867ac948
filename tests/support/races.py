"""Races: callables run in threads of their own, released together by a barrier.

``race(n, work)`` runs ``work(0)`` … ``work(n - 1)`` at once and returns what each returned, in
order, re-raising the first error; ``run_together(callables)`` returns each one's ``Outcome``
(what it returned or raised) for tests that expect some to fail.
"""

import contextlib
import threading
import time
from dataclasses import dataclass
from functools import partial


@dataclass(frozen=True)
class Outcome:
    """What one racer returned, or the error it raised."""

    value: object = None
    error: BaseException | None = None

    def get(self):
        if self.error is not None:
            raise self.error
        return self.value


def run_together(callables, *, inside=None, timeout=30) -> list[Outcome]:
    """Run each callable in a thread of its own, all released together by one barrier; wait
    for every one (``timeout`` seconds for the barrier, and as long for all of them to finish)
    and return their outcomes in the callables' order.

    ``inside`` (optional) makes the context manager each racer enters in its own thread before
    the start: an app context, a connection made ahead so the racers overlap. A racer that
    fails before the start breaks the barrier, so the others fail at once rather than wait.
    """
    callables = list(callables)
    barrier = threading.Barrier(len(callables), timeout=timeout)
    outcomes = [None] * len(callables)

    def run(index, work):
        try:
            with inside() if inside is not None else contextlib.nullcontext():
                barrier.wait()
                outcomes[index] = Outcome(value=work())
        except BaseException as error:  # handed back to the test's thread
            barrier.abort()  # past the start already, this changes nothing
            outcomes[index] = Outcome(error=error)

    threads = [threading.Thread(target=run, args=pair, daemon=True) for pair in enumerate(callables)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads), f"a racing thread hung (over {timeout} s)"
    return outcomes


def race(n, work, *, inside=None, timeout=30) -> list:
    """Run ``work(i)`` for each ``i`` in ``range(n)``, released together (see ``run_together``);
    return what each returned, in order. If any raised, re-raise the first error that is not
    merely a broken barrier (the others' share of one racer's failure)."""
    outcomes = run_together([partial(work, i) for i in range(n)], inside=inside, timeout=timeout)
    errors = [outcome.error for outcome in outcomes if outcome.error is not None]
    if errors:
        raise next((e for e in errors if not isinstance(e, threading.BrokenBarrierError)), errors[0])
    return [outcome.value for outcome in outcomes]
