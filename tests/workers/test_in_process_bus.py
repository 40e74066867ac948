"""The in-process worker's start and stop, when its own periodic jobs publish while it stops
(the outbox sweep and the flash sale's tick both do): the stop must not wait out its 30 s
join, nor leave a worker or a job's thread running behind it. Nor does each broker booted in
the process leave a time-limit watcher of its own."""

import threading
import time

from dramatiq.brokers.stub import StubBroker

from gmall_payment.adapters.dramatiq.actors import DramatiqBus
from gmall_payment.adapters.dramatiq.broker import BrokerSettings, Periodic, ProcessTimeLimit, make_broker


def job_threads():
    return [thread for thread in threading.enumerate() if thread.name == "gmall-publisher"]


def test_a_job_publishing_while_the_worker_stops_neither_restarts_it_nor_outlives_it():
    in_job, release = threading.Event(), threading.Event()
    runs = []

    def publisher():  # its first run is still publishing when the stop begins
        runs.append(time.monotonic())
        if len(runs) == 1:
            in_job.set()
            release.wait(10)
        bus.start()  # what publish() does after sending

    broker = StubBroker()
    broker.add_middleware(Periodic({"publisher": (publisher, 0.01)}))
    bus = DramatiqBus(broker, actors={}, routes={}, threads=1)
    bus.start()
    assert in_job.wait(10)

    closer = threading.Thread(target=bus.close)
    started = time.monotonic()
    closer.start()
    while bus.worker is not None:
        time.sleep(0.01)
    time.sleep(0.2)  # the stop is joining the job's thread now
    release.set()
    closer.join(25)

    assert not closer.is_alive(), "the stop waited out its join"
    assert time.monotonic() - started < 20  # a bound: the stop itself takes well under a second
    assert bus.worker is None and not job_threads()

    bus.start()  # a later publish starts the worker again, with its jobs
    assert bus.worker is not None and len(job_threads()) == 1
    bus.close()
    assert bus.worker is None and not job_threads()


def _watchers():
    return [thread for thread in threading.enumerate() if type(thread).__name__ == "_CtypesTimeoutManager"]


def test_the_brokers_booted_in_one_process_share_one_time_limit_watcher():
    before = _watchers()
    brokers = [make_broker(BrokerSettings(), []) for _ in range(3)]
    for broker in brokers:
        DramatiqBus(broker, actors={}, routes={}, threads=1).start()  # boots the broker, then stops
        broker.close()

    started = set(_watchers()) - set(before)
    assert len(started) <= 1  # none if a broker booted in this process before (another test's)
    limits = [m for broker in brokers for m in broker.middleware if isinstance(m, ProcessTimeLimit)]
    [manager] = {limit.manager for limit in limits}
    assert len(limits) == 3 and manager.is_alive() and manager in _watchers()
