"""The nudger coalesces a burst of nudges into few enqueues, and never drops the last one."""

from __future__ import annotations

import threading
import time

from connector.worker.queue import Nudger


class _Enqueues:
    """Counts enqueue calls; the first one blocks until released."""

    def __init__(self) -> None:
        self.calls: list[float] = []
        self.called = threading.Semaphore(0)
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self) -> None:
        self.started.set()
        if not self.calls:
            self.release.wait(timeout=10)
        self.calls.append(time.monotonic())
        self.called.release()


def test_a_burst_of_nudges_during_an_enqueue_becomes_one_more_enqueue() -> None:
    enqueues = _Enqueues()
    nudger = Nudger(enqueues, min_interval=0.05)
    try:
        nudger.nudge()
        assert enqueues.started.wait(timeout=10)
        for _ in range(500):  # while the first enqueue runs
            nudger.nudge()
        enqueues.release.set()
        assert enqueues.called.acquire(timeout=10)
        assert enqueues.called.acquire(timeout=10)  # the burst's one enqueue
        assert not enqueues.called.acquire(timeout=0.3)  # and no other
    finally:
        nudger.close()
    assert len(enqueues.calls) == 2


def test_nudges_within_the_interval_wait_for_it_then_become_one_enqueue() -> None:
    enqueues = _Enqueues()
    enqueues.release.set()
    nudger = Nudger(enqueues, min_interval=0.3)
    try:
        nudger.nudge()
        assert enqueues.called.acquire(timeout=10)
        for _ in range(100):
            nudger.nudge()
            time.sleep(0.001)
        assert enqueues.called.acquire(timeout=10)
        assert not enqueues.called.acquire(timeout=0.5)
    finally:
        nudger.close()
    first, second = enqueues.calls
    assert second - first >= 0.3  # the interval holds whatever came meanwhile


def test_close_ends_the_thread_during_the_interval() -> None:
    enqueues = _Enqueues()
    enqueues.release.set()
    nudger = Nudger(enqueues, min_interval=60)
    nudger.nudge()
    assert enqueues.called.acquire(timeout=10)
    nudger.nudge()
    began = time.monotonic()
    nudger.close()
    assert time.monotonic() - began < 5
    assert len(enqueues.calls) == 1
