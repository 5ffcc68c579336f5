"""What the machine was doing while a benchmark's request was slow.

A latency benchmark on a shared two-core virtual machine sees stalls that are not the code's:
the whole machine stopped by its host (every process late at once), or the disk taking a
hundred milliseconds or more to write what a flush waits for (the CPUs idle "in iowait").
:class:`StallWatch` runs a small separate process that reads ``/proc/stat`` every 50 ms and
records, per sample, the CPU ticks spent in iowait and in steal, and how late the watcher
itself woke up (when it is late too, the machine was stopped or every CPU taken). After a
phase, :func:`blame` sorts each slow request by what overlapped it.

Run alone (``python -m benchmarks.stall_watch FILE``) it is the watcher process: it appends
``time late_ms iowait steal total`` lines to FILE until killed (time on the monotonic clock,
which the benchmarks' event loops share).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

INTERVAL = 0.05
PAUSED_MS = 20.0  # the watcher woke this much later than asked: the machine was stopped
DISK_SHARE = 0.3  # a sample with this share of its CPU ticks in iowait is a disk wait


@dataclass(frozen=True)
class Sample:
    """One reading: at ``time`` (monotonic s), the watcher ``late_ms`` late, and the CPU ticks
    of the machine since the reading before."""

    time: float
    late_ms: float
    iowait: int
    steal: int
    total: int

    @property
    def disk_wait(self) -> bool:
        """Much of this interval's CPU time was idle waiting for the disk."""
        return self.total > 0 and self.iowait / self.total >= DISK_SHARE

    @property
    def paused(self) -> bool:
        """The watcher itself woke late: the machine (or all its CPU) was taken."""
        return self.late_ms >= PAUSED_MS


@dataclass(frozen=True)
class Slow:
    """A slow request: due at ``due`` (monotonic s), answered ``latency_ms`` later, written
    ``late_ms`` after it was due."""

    due: float
    latency_ms: float
    late_ms: float


AFTER_DISK_WAIT = 1.0  # s: requests due this soon after a disk wait meet its backlog

CAUSES = (
    "machine paused",
    "load generator late",
    "disk wait",
    "just after a disk wait",
    "none of these",
)


def blame(slow: Sequence[Slow], samples: Sequence[Sample]) -> Counter[str]:
    """How many slow requests overlapped each cause, the first that applies in
    :data:`CAUSES` order ("just after a disk wait": due within a second after one ended, so
    queued behind the requests it held up; "none of these": the code under test, or the
    machine's CPUs, as far as this can tell)."""
    found: Counter[str] = Counter()
    for request in slow:
        end = request.due + request.latency_ms / 1000
        # A sample covers (its predecessor's time, its time]; keep those overlapping the request.
        during = [
            sample
            for before, sample in pairwise(samples)
            if sample.time > request.due and before.time < end
        ]
        if any(sample.paused for sample in during):
            found["machine paused"] += 1
        elif request.late_ms >= request.latency_ms / 2:
            found["load generator late"] += 1
        elif any(sample.disk_wait for sample in during):
            found["disk wait"] += 1
        elif any(
            sample.disk_wait and request.due - AFTER_DISK_WAIT < sample.time <= request.due
            for sample in samples
        ):
            found["just after a disk wait"] += 1  # answered behind the wait's backlog
        else:
            found["none of these"] += 1
    return found


def longest_disk_wait(samples: Sequence[Sample]) -> float:
    """The longest run of consecutive disk-wait samples, in ms."""
    longest = 0.0
    began: float | None = None
    for before, sample in pairwise(samples):
        if sample.disk_wait:
            began = before.time if began is None else began
            longest = max(longest, (sample.time - began) * 1000)
        else:
            began = None
    return longest


class StallWatch:
    """The watcher process, and its samples between two times."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def between(self, start: float, end: float) -> list[Sample]:
        """The samples taken from ``start`` to ``end`` (monotonic s)."""
        samples = []
        for line in self.path.read_text().splitlines():
            fields = line.split()
            if len(fields) != 5:
                continue  # a line being written
            sample = Sample(float(fields[0]), float(fields[1]), *(int(v) for v in fields[2:]))
            if start <= sample.time <= end:
                samples.append(sample)
        return samples


@contextmanager
def watching(folder: Path) -> Iterator[StallWatch]:
    """Run the watcher (at the highest CPU priority allowed, so its own lateness means the
    machine's) while the block runs."""
    path = folder / "stall-watch.txt"
    path.touch()
    process = subprocess.Popen(  # noqa: S603 - this module, run as a script
        [sys.executable, "-m", "benchmarks.stall_watch", str(path)],
        preexec_fn=_top_priority,  # noqa: PLW1509 - the child only sets its niceness
    )
    try:
        yield StallWatch(path)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _top_priority() -> None:
    try:
        os.nice(-20)
    except PermissionError:
        return  # an unprivileged run: the watcher stays at normal priority


def _ticks() -> tuple[int, int, int]:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[4], fields[7] if len(fields) > 7 else 0, sum(fields[:8])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path)
    args = parser.parse_args()
    previous = _ticks()
    due = time.monotonic() + INTERVAL
    with args.file.open("a", buffering=1) as out:
        while True:
            time.sleep(max(0.0, due - time.monotonic()))
            now = time.monotonic()
            current = _ticks()
            iowait, steal, total = (a - b for a, b in zip(current, previous, strict=True))
            out.write(f"{now:.4f} {(now - due) * 1000:.1f} {iowait} {steal} {total}\n")
            previous = current
            due = due + INTERVAL if now - due < INTERVAL else now + INTERVAL


if __name__ == "__main__":
    main()
