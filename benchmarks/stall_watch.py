"""What the machine was doing while a benchmark's request was slow.

A latency benchmark on a shared two-core virtual machine sees stalls that are not the code's:
the whole machine stopped by its host (every process late at once), or the disk taking a
hundred milliseconds or more to write what a flush waits for. :class:`StallWatch` runs a
small separate process that reads ``/proc/stat`` and ``/proc/diskstats`` every 50 ms and
records, per sample, the CPU ticks spent in iowait and in steal, the writes the disk completed
and how long they took, the requests it had in flight, how late the watcher itself woke up
(when it is late too, the machine was stopped or every CPU taken), and, once told which
process serves the requests (:meth:`StallWatch.follow`), how long that process's threads
waited for a CPU while runnable (the kernel's ``schedstat`` run delay: the other processes
had both CPUs). After a phase, :func:`blame` sorts each slow request by what overlapped it.

Run alone (``python -m benchmarks.stall_watch FILE [--disk-of PATH]``) it is the watcher
process: it appends ``time late_ms iowait steal total writes write_ms in_flight cpu_wait_ms``
lines to FILE until killed (time on the monotonic clock, which the benchmarks' event loops
share), watching the disk that holds PATH (the temporary directory's by default) and the
process whose id is in ``FILE.pid`` once that file is written.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

INTERVAL = 0.05
PAUSED_MS = 20.0  # the watcher woke this much later than asked: the machine was stopped
DISK_SHARE = 0.3  # a sample with this share of its CPU ticks in iowait is a disk wait
SLOW_WRITE_MS = 20.0  # ... or whose disk writes took this long on average
CPU_WAIT_MS = 10.0  # the served process's threads waited this long for a CPU, all told


@dataclass(frozen=True)
class Sample:
    """One reading: at ``time`` (monotonic s), the watcher ``late_ms`` late; since the reading
    before, the machine's CPU ticks, the writes its disk completed and the ms they took
    (``/proc/diskstats``), and the ms the followed process's threads were runnable but not
    running (summed over its threads); and the requests the disk had in flight at the
    reading."""

    time: float
    late_ms: float
    iowait: int
    steal: int
    total: int
    writes: int = 0
    write_ms: int = 0
    in_flight: int = 0
    cpu_wait_ms: float = 0.0

    @property
    def disk_wait(self) -> bool:
        """The disk held its writers up: much of the CPU time idle waiting for it, its writes
        slow on average, or requests in flight and none completed (with both CPUs busy,
        iowait alone shows no wait)."""
        if self.total > 0 and self.iowait / self.total >= DISK_SHARE:
            return True
        if self.writes:
            return self.write_ms / self.writes >= SLOW_WRITE_MS
        return self.in_flight > 0

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
    "waited for a CPU",
    "none of these",
)


def blame(slow: Sequence[Slow], samples: Sequence[Sample]) -> Counter[str]:
    """How many slow requests overlapped each cause, the first that applies in
    :data:`CAUSES` order ("just after a disk wait": due within a second after one ended, so
    queued behind the requests it held up; "waited for a CPU": the serving process's threads
    were runnable but not running for :data:`CPU_WAIT_MS` or more in the readings that
    overlapped it, the other processes holding both CPUs; "none of these": the code under
    test, as far as this can tell)."""
    found: Counter[str] = Counter()
    for request in slow:
        during = overlapping(request, samples)
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
        elif sum(sample.cpu_wait_ms for sample in during) >= CPU_WAIT_MS:
            found["waited for a CPU"] += 1
        else:
            found["none of these"] += 1
    return found


def overlapping(request: Slow, samples: Sequence[Sample]) -> list[Sample]:
    """The samples whose span overlaps ``request`` (a sample covers the time since the one
    before it)."""
    end = request.due + request.latency_ms / 1000
    return [
        sample
        for before, sample in pairwise(samples)
        if sample.time > request.due and before.time < end
    ]


def steal_share(samples: Iterable[Sample]) -> float:
    """The share of the machine's CPU time that its host took (steal) in ``samples``, each
    counted once."""
    unique = {sample.time: sample for sample in samples}.values()
    return sum(sample.steal for sample in unique) / max(sum(sample.total for sample in unique), 1)


def steal_while_slow(slow: Sequence[Slow], samples: Sequence[Sample]) -> float:
    """:func:`steal_share` over the samples that overlapped the slow requests: set beside
    the whole phase's, it says whether the host took the CPU while they waited."""
    return steal_share(sample for request in slow for sample in overlapping(request, samples))


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

    def follow(self, pid: int) -> None:
        """From now on, also record how long process ``pid``'s threads wait for a CPU."""
        pid_file = followed_file(self.path)
        pid_file.with_suffix(".tmp").write_text(str(pid))
        pid_file.with_suffix(".tmp").replace(pid_file)  # never read half-written

    def between(self, start: float, end: float) -> list[Sample]:
        """The samples taken from ``start`` to ``end`` (monotonic s)."""
        samples = []
        for line in self.path.read_text().splitlines():
            fields = line.split()
            if len(fields) != 9:
                continue  # a line being written
            iowait, steal, total, writes, write_ms, in_flight = (int(v) for v in fields[2:8])
            at, late_ms, cpu_wait_ms = float(fields[0]), float(fields[1]), float(fields[8])
            sample = Sample(
                at, late_ms, iowait, steal, total, writes, write_ms, in_flight, cpu_wait_ms
            )
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


def _counters(device: str) -> tuple[int, ...]:
    """(iowait, steal, all) CPU ticks and the disk's (writes completed, ms writing) so far,
    and its requests in flight now."""
    cpu = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    disk = (0, 0, 0)
    for line in Path("/proc/diskstats").read_text().splitlines():
        fields = line.split()
        if f"{fields[0]}:{fields[1]}" == device:
            disk = (int(fields[7]), int(fields[10]), int(fields[11]))
            break
    return cpu[4], cpu[7] if len(cpu) > 7 else 0, sum(cpu[:8]), *disk


def run_delay_ms(pid: int) -> float:
    """The ms process ``pid``'s threads have spent runnable but not running, all told (the
    second figure of each thread's ``schedstat``, in ns); 0 when it is gone."""
    total = 0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return 0.0
    for task in tasks:
        try:
            total += int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # a thread that ended meanwhile
    return total / 1e6


def followed_file(path: Path) -> Path:
    """Where the watcher writing ``path`` finds the id of the process to follow."""
    return path.with_suffix(".pid")


def _followed(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text())
    except (OSError, ValueError):
        return None


def disk_of(path: str) -> str:
    """``major:minor`` of the disk holding ``path``."""
    device = os.stat(path).st_dev
    return f"{os.major(device)}:{os.minor(device)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--disk-of", default=tempfile.gettempdir(), help="watch this disk")
    args = parser.parse_args()
    device = disk_of(args.disk_of)
    previous = _counters(device)
    pid_file = followed_file(args.file)
    pid: int | None = None
    waited = 0.0
    due = time.monotonic() + INTERVAL
    with args.file.open("a", buffering=1) as out:
        while True:
            time.sleep(max(0.0, due - time.monotonic()))
            now = time.monotonic()
            current = _counters(device)
            changes = [a - b for a, b in zip(current[:5], previous[:5], strict=True)]
            if pid is None and (pid := _followed(pid_file)) is not None:
                waited = run_delay_ms(pid)
            cpu_wait = 0.0
            if pid is not None:
                now_waited = run_delay_ms(pid)
                cpu_wait, waited = now_waited - waited, now_waited
            figures = " ".join(str(v) for v in (*changes, current[5]))
            out.write(f"{now:.4f} {(now - due) * 1000:.1f} {figures} {max(cpu_wait, 0):.2f}\n")
            previous = current
            due = due + INTERVAL if now - due < INTERVAL else now + INTERVAL


if __name__ == "__main__":
    main()
