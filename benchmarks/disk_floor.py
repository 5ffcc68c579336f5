"""The disk's floor under a durable webhook: how slow its flushes get with nothing else running.

A webhook is answered after its journal entry is flushed to the disk (``fdatasync``), so no
answer comes sooner than that flush. This benchmark runs nothing of the connector: each of
``--files`` threads writes 4 KB in place in a file of its own and flushes it, at a steady
``--rate`` for ``--seconds``. It prints each file's flush latency (p50, p99, p99.9, max) and
the flushes slower than the webhook goal (30 ms). For each such stall it asks whether another
file's flush, begun within the goal after the stall began, was through by then: if none was,
the stall is the whole device's, and neither spreading the journal over several files nor
flushing a second copy when the first is slow would have answered within the goal. It also
prints the longest wait had the first of any file's flushes counted: the floor under such a
journal.

    python -m benchmarks.disk_floor [--seconds 120] [--rate 100] [--files 2] [--folder DIR]

The folder defaults to the current one (the connector's state lives there in local mode).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

GOAL_MS = 30.0  # issue 19's webhook max
BLOCK = 4096


@dataclass(frozen=True)
class FlushTime:
    """One ``fdatasync``: when it began and ended (``time.monotonic`` seconds)."""

    start: float
    end: float

    @property
    def ms(self) -> float:
        return (self.end - self.start) * 1000


def flush_steadily(path: Path, rate: float, seconds: float, delay: float = 0.0) -> list[FlushTime]:
    """Write 4 KB in place in ``path`` and flush it ``rate`` times a second for ``seconds``
    (the first after ``delay``), each when due even if an earlier one ran late; the file is
    removed afterwards."""
    block = os.urandom(BLOCK)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    flushes: list[FlushTime] = []
    try:
        os.pwrite(fd, block, 0)
        os.fsync(fd)  # allocated once: later flushes write data only, no file metadata
        first = time.monotonic() + delay
        for index in range(max(1, round(seconds * rate))):
            pause = first + index / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            os.pwrite(fd, block, 0)
            began = time.monotonic()
            os.fdatasync(fd)
            flushes.append(FlushTime(began, time.monotonic()))
    finally:
        os.close(fd)
        path.unlink()
    return flushes


def flush_in_parallel(
    folder: Path, files: int, rate: float, seconds: float
) -> list[list[FlushTime]]:
    """:func:`flush_steadily` on ``files`` files at once, one thread each, their flushes
    staggered evenly over the interval."""
    results: list[list[FlushTime]] = [[] for _ in range(files)]
    failures: list[BaseException] = []

    def run(index: int) -> None:
        path = folder / f"disk-floor-{index}.bin"
        try:
            results[index] = flush_steadily(path, rate, seconds, delay=index / (rate * files))
        except OSError as error:
            failures.append(error)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(files)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return results


def stalls(flushes: Sequence[FlushTime], goal_ms: float = GOAL_MS) -> list[FlushTime]:
    """The flushes slower than ``goal_ms``."""
    return [flush for flush in flushes if flush.ms > goal_ms]


def hedged_ms(stall: FlushTime, others: Sequence[FlushTime]) -> float:
    """How long ``stall`` would have kept an answer waiting had a flush of another file, begun
    after it, counted as well: until the first of them (or the stall itself) was through."""
    through = min((other.end for other in others if other.start >= stall.start), default=stall.end)
    return (min(stall.end, through) - stall.start) * 1000


def escapable(stall: FlushTime, others: Sequence[FlushTime], goal_ms: float = GOAL_MS) -> bool:
    """Whether a flush of another file, begun after ``stall`` began, was through by the time
    the goal ran out: a second copy flushed then would have answered within the goal."""
    return hedged_ms(stall, others) <= goal_ms


@dataclass(frozen=True)
class Summary:
    """One file's flush latencies (ms), and how many were slower than the goal."""

    count: int
    p50: float
    p99: float
    p999: float
    top: float
    over_goal: int

    @classmethod
    def of(cls, flushes: Sequence[FlushTime], goal_ms: float = GOAL_MS) -> Summary:
        values = [flush.ms for flush in flushes]
        cuts = statistics.quantiles(values, n=1000, method="inclusive")
        return cls(
            count=len(values),
            p50=cuts[499],
            p99=cuts[989],
            p999=cuts[998],
            top=max(values),
            over_goal=len(stalls(flushes, goal_ms)),
        )


def report(runs: Sequence[Sequence[FlushTime]], rate: float, seconds: float) -> list[str]:
    """The lines the benchmark prints for ``runs`` (one list of flushes per file)."""
    lines = [
        f"4 KB written and flushed {rate:g} times a second on each of {len(runs)} files "
        f"for {seconds:g} s, nothing else of the connector running",
        "file   flushes   p50 ms   p99 ms   p99.9 ms   max ms   over 30 ms",
    ]
    for index, flushes in enumerate(runs):
        s = Summary.of(flushes)
        lines.append(
            f"{index:>4}   {s.count:>7}   {s.p50:>6.2f}   {s.p99:>6.2f}   {s.p999:>8.2f}   "
            f"{s.top:>6.1f}   {s.over_goal:>10}"
        )
    slow = [
        hedged_ms(stall, [f for j, other in enumerate(runs) if j != i for f in other])
        for i, flushes in enumerate(runs)
        for stall in stalls(flushes)
    ]
    top = max(flush.ms for flushes in runs for flush in flushes)
    lines.append(
        f"slowest flush {top:.1f} ms: {top / GOAL_MS:.2f}x the webhook max goal ({GOAL_MS:g} ms)"
    )
    if len(runs) > 1 and slow:
        lines.append(
            f"flushes over {GOAL_MS:g} ms: {len(slow)}; of them, another file's flush got "
            f"through within the goal meanwhile: {sum(1 for wait in slow if wait <= GOAL_MS)}; "
            f"the longest wait had the first of any file's flushes counted: {max(slow):.1f} ms"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--rate", type=float, default=100.0, help="flushes a second, per file")
    parser.add_argument("--files", type=int, default=2, help="files flushed at once")
    parser.add_argument("--folder", type=Path, default=Path.cwd(), help="where the files go")
    args = parser.parse_args(argv)
    if not (0 < args.rate <= 10_000 and 1 <= args.files <= 64 and args.seconds * args.rate >= 2):
        parser.error("--rate must be 0-10000, --files 1-64, and each file flushed twice or more")
    if not args.folder.is_dir():
        parser.error(f"--folder {args.folder} is not a folder")
    with tempfile.TemporaryDirectory(dir=args.folder, prefix="disk-floor-") as folder:
        runs = flush_in_parallel(Path(folder), args.files, args.rate, args.seconds)
    for line in report(runs, args.rate, args.seconds):
        print(line, flush=True)


if __name__ == "__main__":
    main()
