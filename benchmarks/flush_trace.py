"""Which processes sent data to the disk while a file's flush was slow, from the kernel's trace.

Every webhook is answered after the journal's write reached the disk: a ``fdatasync`` of its
WAL file. On a virtual disk with no FUA (``/sys/block/*/queue/fua`` 0) a flush makes the
device persist everything written to it before, by every process, so a flush is slow when
something else has just sent the disk megabytes. :class:`FlushTracer` switches on three of
the kernel's trace events (tracefs, root only): ``block_bio_queue`` (each write sent to the
block layer, in the context of the process that sent it), and ``ext4_sync_file_enter`` /
``ext4_sync_file_exit`` (each fsync and fdatasync, with its file's inode). After a phase,
:func:`around_slow_flushes` adds up, per process, what was sent to the disk from shortly
before each slow flush of a file until it ended; :func:`sent_per_second` gives the same over
the whole phase for comparison. :func:`probe_disk` measures the disk's own flushes with
nothing else writing: 4 KB written in place and flushed every 5 ms.
"""

from __future__ import annotations

import os
import re
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.disk_floor import flush_steadily
from benchmarks.stall_watch import disk_of

TRACEFS = Path("/sys/kernel/tracing")
EVENTS = ("block/block_bio_queue", "ext4/ext4_sync_file_enter", "ext4/ext4_sync_file_exit")
BEFORE = 0.1  # s: writes sent this long before a flush began are counted as in its way
SECTOR = 512

# "python-20227 (  20204) [001] ..... 39769.170136: block_bio_queue: 254,0 WS 123 + 8 [python]"
_LINE = re.compile(
    r"^\s*(?P<comm>.+?)-(?P<tid>\d+)\s+\(\s*(?P<tgid>[\d-]+)\)\s+\[\d+\]\s+\S+\s+"
    r"(?P<time>\d+\.\d+):\s+(?P<event>\w+):\s*(?P<rest>.*)$"
)
_BIO = re.compile(r"^(?P<dev>\d+,\d+) (?P<rwbs>\S+) \d+ \+ (?P<sectors>\d+) ")
_SYNC = re.compile(r"^dev (?P<dev>\d+,\d+) ino (?P<ino>\d+)")


@dataclass(frozen=True)
class Write:
    """``size`` bytes sent to the disk at ``time`` (monotonic s) by process ``tgid``."""

    time: float
    tgid: int
    comm: str
    size: int


@dataclass(frozen=True)
class Flush:
    """An fsync or fdatasync of file ``inode`` by process ``tgid``, from ``start`` to ``end``."""

    start: float
    end: float
    tgid: int
    inode: int

    @property
    def ms(self) -> float:
        """How long the flush took."""
        return (self.end - self.start) * 1000


@dataclass
class Trace:
    """The writes sent to one disk and the flushes on it, in time order."""

    writes: list[Write] = field(default_factory=list)
    flushes: list[Flush] = field(default_factory=list)


def parse(lines: Iterable[str], device: str) -> Trace:
    """The writes to ``device`` (``major,minor``) and the completed flushes on it, from the
    trace's text (recorded with the ``record-tgid`` option)."""
    trace = Trace()
    entered: dict[int, tuple[float, int]] = {}  # thread -> (start, inode) of its open flush
    for line in lines:
        found = _LINE.match(line)
        if found is None:
            continue
        event, rest = found["event"], found["rest"]
        tgid = int(found["tgid"]) if found["tgid"].isdigit() else int(found["tid"])
        if event == "block_bio_queue":
            bio = _BIO.match(rest)
            if bio and bio["dev"] == device and "W" in bio["rwbs"]:
                size = int(bio["sectors"]) * SECTOR
                trace.writes.append(Write(float(found["time"]), tgid, found["comm"], size))
            continue
        sync = _SYNC.match(rest)
        if sync is None or sync["dev"] != device:
            continue
        thread = int(found["tid"])
        if event == "ext4_sync_file_enter":
            entered[thread] = (float(found["time"]), int(sync["ino"]))
        elif event == "ext4_sync_file_exit" and thread in entered:
            start, inode = entered.pop(thread)
            trace.flushes.append(Flush(start, float(found["time"]), tgid, inode))
    return trace


def who(write: Write, names: Mapping[int, str]) -> str:
    """The name of the process that sent a write: from ``names`` (pid to name), else the
    kernel's (its writeback and journal threads), else "other"."""
    if write.tgid in names:
        return names[write.tgid]
    if write.comm.startswith(("kworker", "jbd2")):
        return "kernel"
    return "other"


def around_slow_flushes(
    trace: Trace, inodes: set[int], names: Mapping[int, str], over_ms: float = 30.0
) -> tuple[list[Flush], Counter[str], float]:
    """The flushes of ``inodes`` slower than ``over_ms``, the bytes each process sent to the
    disk from :data:`BEFORE` before one of them began until it ended (overlapping windows
    counted once), and how many seconds those windows span."""
    slow = [f for f in trace.flushes if f.inode in inodes and f.ms > over_ms]
    windows: list[list[float]] = []
    for flush in sorted(slow, key=lambda f: f.start):
        if windows and flush.start - BEFORE <= windows[-1][1]:
            windows[-1][1] = max(windows[-1][1], flush.end)
        else:
            windows.append([flush.start - BEFORE, flush.end])
    times = [write.time for write in trace.writes]  # in time order, as the trace prints them
    sent: Counter[str] = Counter()
    for start, end in windows:  # disjoint: each write counted once
        for write in trace.writes[bisect_left(times, start) : bisect_right(times, end)]:
            sent[who(write, names)] += write.size
    return slow, sent, sum(end - start for start, end in windows)


def overlaps(flushes: Iterable[Flush], start: float, end: float) -> bool:
    """Whether something that lasted from ``start`` to ``end`` (monotonic s) overlapped one of
    ``flushes``."""
    return any(flush.start < end and flush.end > start for flush in flushes)


def sent_per_second(trace: Trace, names: Mapping[int, str], seconds: float) -> Counter[str]:
    """The bytes each process sent to the disk per second over ``seconds``."""
    sent: Counter[str] = Counter()
    for write in trace.writes:
        sent[who(write, names)] += write.size
    return Counter({name: int(size / max(seconds, 1e-9)) for name, size in sent.items()})


@dataclass(frozen=True)
class FlushFigures:
    """A phase's slow flushes of the watched file, what each process sent to the disk around
    them, and what each sent per second over the whole phase (bytes)."""

    slow: list[Flush]
    around: Counter[str]
    around_seconds: float  # how long the windows around the slow flushes last in all
    per_second: Counter[str]
    bursts: Counter[str]  # the most each process sent within one 100 ms step
    count: int  # flushes of the watched file in all
    longest_ms: float

    @staticmethod
    def of(
        trace: Trace, inodes: set[int], names: Mapping[int, str], seconds: float
    ) -> FlushFigures:
        """The figures of one phase's trace."""
        slow, around, around_seconds = around_slow_flushes(trace, inodes, names)
        watched = [flush.ms for flush in trace.flushes if flush.inode in inodes]
        return FlushFigures(
            slow,
            around,
            around_seconds,
            sent_per_second(trace, names, seconds),
            largest_bursts(trace, names),
            len(watched),
            max(watched, default=0.0),
        )


def largest_bursts(trace: Trace, names: Mapping[int, str], span: float = BEFORE) -> Counter[str]:
    """The most bytes each process sent to the disk within one ``span`` of time (in fixed
    steps of ``span``): how bursty its writes are, whatever the disk did."""
    buckets: Counter[tuple[str, int]] = Counter()
    for write in trace.writes:
        buckets[who(write, names), int(write.time // span)] += write.size
    largest: Counter[str] = Counter()
    for (name, _), size in buckets.items():
        largest[name] = max(largest[name], size)
    return largest


def probe_disk(folder: Path, seconds: float, interval: float = 0.005) -> list[float]:
    """The disk's own flush latency (ms), the connector not involved: 4 KB written in place
    in a file in ``folder`` and ``fdatasync``-ed every ``interval`` s for ``seconds``."""
    return [flush.ms for flush in flush_steadily(folder / "disk-probe.bin", 1 / interval, seconds)]


def device_of(path: Path) -> str:
    """``major,minor`` of the disk holding ``path``, as the trace writes it."""
    return disk_of(str(path)).replace(":", ",")


def available(root: Path = TRACEFS) -> bool:
    """The kernel's trace can be switched on by this process (tracefs mounted, root)."""
    return all(os.access(root / "events" / event / "enable", os.W_OK) for event in EVENTS)


class FlushTracer:
    """The trace events switched on: :meth:`clear` before a phase, :meth:`read` after it."""

    def __init__(self, root: Path, device: str) -> None:
        self.root = root
        self.device = device

    def clear(self) -> None:
        """Forget what was recorded so far."""
        (self.root / "trace").write_text("")

    def read(self) -> Trace:
        """What was recorded since :meth:`clear`."""
        with (self.root / "trace").open() as text:
            return parse(text, self.device)


@contextmanager
def flush_tracing(folder: Path, root: Path = TRACEFS) -> Iterator[FlushTracer]:
    """Switch the events on for the disk holding ``folder`` while the block runs; the trace's
    settings are put back as they were afterwards."""
    settings = {
        "trace_clock": "mono",  # the clock of time.monotonic(), which the benchmarks use
        "options/record-tgid": "1",  # the process of each event, not only its thread
        "buffer_size_kb": "65536",  # per CPU: a 60 s phase at 200/s takes a few MB
        **{f"events/{event}/enable": "1" for event in EVENTS},
        "tracing_on": "1",
    }
    before = {name: _current(root / name) for name in settings}
    written: list[str] = []
    try:
        for name, value in settings.items():
            (root / name).write_text(value)
            written.append(name)
        yield FlushTracer(root, device_of(folder))
    finally:
        for name in reversed(written):
            (root / name).write_text(before[name])
        (root / "trace").write_text("")


def _current(path: Path) -> str:
    """A setting's value as it can be written back (``trace_clock`` lists every clock with
    the chosen one in brackets)."""
    text = path.read_text().strip()
    chosen = re.search(r"\[(\w+)\]", text)
    return chosen.group(1) if chosen else text
