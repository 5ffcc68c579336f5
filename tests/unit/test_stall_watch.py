"""The inbound benchmark's stall watch: each slow request is put down to what overlapped it,
the first cause that applies, so a reader can tell the machine's stalls from the code's."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.stall_watch import (
    Sample,
    Slow,
    blame,
    followed_file,
    longest_disk_wait,
    run_delay_ms,
    steal_share,
    steal_while_slow,
    watching,
)


def _samples() -> list[Sample]:
    """Two seconds of 50 ms readings: a disk wait from 0.45 to 0.70 s, and at 1.50 s the
    watcher itself woke 30 ms late."""
    return [
        Sample(0.05 * i, 30.0 if i == 30 else 0.0, 5 if 10 <= i <= 14 else 0, 0, 10)
        for i in range(40)
    ]


def test_each_slow_request_is_put_down_to_the_first_cause_that_overlapped_it() -> None:
    slow = [
        Slow(due=0.52, latency_ms=100, late_ms=1),  # inside the disk wait
        Slow(due=0.80, latency_ms=40, late_ms=1),  # due 0.1 s after it ended
        Slow(due=1.45, latency_ms=40, late_ms=1),  # the machine stopped meanwhile
        Slow(due=1.70, latency_ms=40, late_ms=30),  # written 30 ms late by the generator
        Slow(due=1.85, latency_ms=40, late_ms=1),  # nothing seen: the code's own
    ]
    assert blame(slow, _samples()) == {
        "disk wait": 1,
        "just after a disk wait": 1,
        "machine paused": 1,
        "load generator late": 1,
        "none of these": 1,
    }


def test_a_disk_wait_is_30_percent_of_the_cpu_time_in_iowait() -> None:
    assert Sample(1.0, 0.0, 3, 0, 10).disk_wait
    assert not Sample(1.0, 0.0, 2, 0, 10).disk_wait
    assert not Sample(1.0, 0.0, 0, 0, 0).disk_wait  # no ticks counted: no evidence


def test_the_longest_disk_wait_spans_its_consecutive_readings() -> None:
    assert round(longest_disk_wait(_samples())) == 250  # from the reading at 0.45 to 0.70 s
    assert longest_disk_wait(_samples()[:5]) == 0


def _busy(writes: int = 0, write_ms: int = 0, in_flight: int = 0) -> Sample:
    """A reading with no CPU idle (so no iowait) and the disk's figures given."""
    return Sample(1.0, 0.0, 0, 0, 10, writes, write_ms, in_flight)


def test_a_disk_wait_is_also_slow_or_stuck_writes_when_no_cpu_is_idle() -> None:
    assert _busy(writes=4, write_ms=100).disk_wait  # 25 ms a write on average
    assert not _busy(writes=40, write_ms=100).disk_wait  # 2.5 ms: a busy disk
    assert _busy(in_flight=3).disk_wait  # 50 ms and nothing completed
    assert not _busy().disk_wait  # nothing asked of the disk


def test_a_slow_request_whose_process_waited_10_ms_for_a_cpu_is_put_down_to_that() -> None:
    readings = [
        Sample(0.05 * i, 0.0, 0, 0, 10, cpu_wait_ms=6.0 if i in (3, 4) else 1.0) for i in range(10)
    ]
    assert blame([Slow(due=0.12, latency_ms=60, late_ms=1)], readings) == {"waited for a CPU": 1}
    assert blame([Slow(due=0.32, latency_ms=40, late_ms=1)], readings) == {"none of these": 1}


def test_the_run_delay_of_a_process_is_what_its_threads_waited_for_a_cpu() -> None:
    ours = run_delay_ms(os.getpid())
    _crowd_the_cpus(0.3)
    assert run_delay_ms(os.getpid()) > ours  # more runnable threads than CPUs: some waited
    assert run_delay_ms(2**22 + 1) == 0.0  # no such process


def _crowd_the_cpus(seconds: float) -> None:
    """Spin more threads than there are CPUs for ``seconds``, so some wait for one."""
    spinners = [
        threading.Thread(target=_spin, args=(seconds,)) for _ in range((os.cpu_count() or 1) + 2)
    ]
    for spinner in spinners:
        spinner.start()
    for spinner in spinners:
        spinner.join()


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_steal_while_slow_counts_each_overlapping_reading_once() -> None:
    # Readings every 50 ms, 10 ticks each; the host took 5 ticks in the reading at 0.50 s.
    samples = [Sample(0.05 * i, 0.0, 0, 5 if i == 10 else 0, 10) for i in range(40)]
    inside = [Slow(due=0.46, latency_ms=40, late_ms=0), Slow(due=0.47, latency_ms=30, late_ms=0)]
    assert steal_while_slow(inside, samples) == 0.5  # both overlap the one reading at 0.50 s
    wider = [Slow(due=0.46, latency_ms=100, late_ms=0)]  # the readings at 0.50, 0.55 and 0.60
    assert steal_while_slow(wider, samples) == 5 / 30
    assert steal_while_slow([Slow(due=1.2, latency_ms=40, late_ms=0)], samples) == 0.0
    assert steal_while_slow([], samples) == 0.0
    assert steal_share(samples) == 5 / 400


def test_the_watcher_process_records_readings_and_the_followed_process_waits(
    tmp_path: Path,
) -> None:
    with watching(tmp_path) as watch:
        watch.follow(os.getpid())
        followed = time.monotonic()
        _until(lambda: watch.between(followed + 0.1, float("inf")))  # started, and following
        crowded = time.monotonic()
        _crowd_the_cpus(0.4)
        done = time.monotonic()
        _until(lambda: watch.between(done + 0.05, float("inf")))  # a reading after the crowd
        readings = watch.between(crowded, done + 0.05)
    assert len(readings) >= 4  # about one every 50 ms
    assert all(reading.total > 0 for reading in readings)  # CPU ticks counted
    assert sum(reading.cpu_wait_ms for reading in readings) > 0  # our spinners waited
    assert followed_file(watch.path).read_text() == str(os.getpid())


def _until(ready: Callable[[], object], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, "the watcher wrote no reading in time"
        time.sleep(0.05)
