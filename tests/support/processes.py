"""Pausing a test's own server process so that it truly answers nothing."""

import signal
import time
from pathlib import Path


def pause(process, timeout: float = 10.0) -> None:
    """SIGSTOP ``process`` and return once every one of its threads is stopped.

    The kernel stops a multi-threaded process only when the thread it chose runs again and
    stops the others; on a loaded machine another thread (mariadbd's connection thread) may
    first answer a query sent right after the signal. Waiting on /proc closes that window.
    """
    process.send_signal(signal.SIGSTOP)
    tasks = Path(f"/proc/{process.pid}/task")
    deadline = time.monotonic() + timeout
    while not all(_stopped(task) for task in tasks.iterdir()):
        if time.monotonic() > deadline:
            raise AssertionError(f"process {process.pid} did not stop within {timeout} s")
        time.sleep(0.01)


def resume(process) -> None:
    process.send_signal(signal.SIGCONT)


def _stopped(task: Path) -> bool:
    try:
        stat = (task / "stat").read_text()
    except FileNotFoundError:  # a thread that ended meanwhile
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("T", "t")
