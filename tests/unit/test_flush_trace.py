"""The inbound benchmark's reading of the kernel's trace: which processes sent the disk data
while the journal's flushes were slow (:mod:`benchmarks.flush_trace`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.flush_trace import (
    EVENTS,
    Flush,
    FlushFigures,
    Trace,
    Write,
    around_slow_flushes,
    flush_tracing,
    largest_bursts,
    overlaps,
    parse,
    probe_disk,
    sent_per_second,
)

WEB, EMULATOR = 200, 300
NAMES = {WEB: "web", EMULATOR: "emulator"}
JOURNAL, OTHER = 11, 22


def bio(time: float, tgid: int, sectors: int, rwbs: str = "WS", dev: str = "254,0") -> str:
    comm = "python" if tgid < 1000 else "kworker/u8:1"
    return (
        f"          {comm}-{tgid + 1} ({tgid:>7}) [001] ..... {time:.6f}: block_bio_queue: "
        f"{dev} {rwbs} 123456 + {sectors} [{comm}]"
    )


def sync(time: float, tid: int, tgid: int, inode: int, *, enter: bool, dev: str = "254,0") -> str:
    event, tail = ("enter", "parent 5 datasync 1 ") if enter else ("exit", "ret 0")
    return (
        f"          python-{tid} ({tgid:>7}) [000] ..... {time:.6f}: ext4_sync_file_{event}: "
        f"dev {dev} ino {inode} {tail}"
    )


def test_parse_keeps_the_writes_to_the_disk_and_pairs_each_threads_flush() -> None:
    lines = [
        "# tracer: nop",
        bio(1.0, EMULATOR, 16),
        bio(1.0, EMULATOR, 8, rwbs="RA"),  # a read: not sent to be written
        bio(1.0, EMULATOR, 8, dev="8,0"),  # another disk
        sync(1.001, 201, WEB, JOURNAL, enter=True),
        sync(1.002, 301, EMULATOR, OTHER, enter=True),  # interleaved with another thread's
        sync(1.050, 201, WEB, JOURNAL, enter=False),
        sync(1.060, 301, EMULATOR, OTHER, enter=False),
        sync(1.070, 999, WEB, JOURNAL, enter=False),  # its start was before the trace
    ]
    trace = parse(lines, "254,0")
    assert trace.writes == [Write(1.0, EMULATOR, "python", 16 * 512)]
    assert trace.flushes == [
        Flush(1.001, 1.050, WEB, JOURNAL),
        Flush(1.002, 1.060, EMULATOR, OTHER),
    ]
    assert trace.flushes[0].ms == pytest.approx(49.0)


def test_slow_flushes_count_what_was_sent_from_shortly_before_each_until_it_ended() -> None:
    trace = Trace(
        writes=[
            Write(0.80, EMULATOR, "python", 1_000),  # 200 ms before: not in the way
            Write(0.95, EMULATOR, "python", 4_000_000),  # 50 ms before: in the way
            Write(1.02, WEB, "python", 8_192),
            Write(1.03, 4000, "kworker/u8:1", 500_000),
            Write(1.04, 4001, "bash", 7),
            Write(1.20, EMULATOR, "python", 9_999),  # after it ended
        ],
        flushes=[
            Flush(1.00, 1.08, WEB, JOURNAL),  # slow
            Flush(1.05, 1.09, WEB, JOURNAL),  # slow and overlapping: counted once
            Flush(1.10, 1.11, WEB, JOURNAL),  # fast
            Flush(1.00, 1.20, EMULATOR, OTHER),  # slow, but not the journal
        ],
    )
    slow, around, seconds = around_slow_flushes(trace, {JOURNAL}, NAMES)
    assert [flush.start for flush in slow] == [1.00, 1.05]
    assert seconds == pytest.approx(0.19)  # 0.90 to 1.09: one window
    assert around == {"emulator": 4_000_000, "kernel": 500_000, "web": 8_192, "other": 7}

    figures = FlushFigures.of(trace, {JOURNAL}, NAMES, seconds=2.0)
    assert (figures.count, round(figures.longest_ms)) == (3, 80)
    assert figures.bursts["emulator"] == 4_000_000  # alone in its 100 ms step
    assert largest_bursts(trace, NAMES, span=1.0)["emulator"] == 4_001_000
    per_second = sent_per_second(trace, NAMES, 2.0)
    assert per_second["emulator"] == (1_000 + 4_000_000 + 9_999) // 2


def test_no_slow_flush_counts_nothing() -> None:
    trace = Trace([Write(1.0, EMULATOR, "python", 10)], [Flush(1.0, 1.01, WEB, JOURNAL)])
    assert around_slow_flushes(trace, {JOURNAL}, NAMES) == ([], {}, 0)


def test_tracing_switches_the_events_on_and_puts_the_settings_back(tmp_path: Path) -> None:
    root = tmp_path / "tracing"
    settings = {
        "trace_clock": "local global [boot] mono",
        "options/record-tgid": "0",
        "buffer_size_kb": "1408",
        "tracing_on": "1",
        "trace": "old events\n",
        **{f"events/{event}/enable": "0" for event in EVENTS},
    }
    for name, value in settings.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(value)
    with flush_tracing(tmp_path, root) as tracer:
        assert (root / "trace_clock").read_text() == "mono"
        assert (root / "options/record-tgid").read_text() == "1"
        assert all((root / f"events/{event}/enable").read_text() == "1" for event in EVENTS)
        tracer.clear()
        assert (root / "trace").read_text() == ""
        lines = [sync(t, 5, 5, 7, enter=t < 1.1, dev=tracer.device) for t in (1.0, 1.2)]
        (root / "trace").write_text("\n".join(lines) + "\n")
        assert tracer.read().flushes == [Flush(1.0, 1.2, 5, 7)]
    assert (root / "trace_clock").read_text() == "boot"  # the one that was chosen
    assert (root / "options/record-tgid").read_text() == "0"
    assert (root / "buffer_size_kb").read_text() == "1408"
    assert all((root / f"events/{event}/enable").read_text() == "0" for event in EVENTS)


def test_the_disk_probe_times_flushes_and_leaves_nothing_behind(tmp_path: Path) -> None:
    latencies = probe_disk(tmp_path, 0.05, interval=0.001)
    assert len(latencies) >= 5
    assert all(ms > 0 for ms in latencies)
    assert list(tmp_path.iterdir()) == []


def test_a_request_overlaps_a_flush_only_when_their_times_cross() -> None:
    flushes = [Flush(1.0, 1.1, WEB, JOURNAL), Flush(2.0, 2.05, WEB, JOURNAL)]
    assert overlaps(flushes, 0.95, 1.01)  # answered while the flush ran
    assert overlaps(flushes, 1.05, 1.2)  # arrived while it ran
    assert overlaps(flushes, 1.99, 2.1)
    assert not overlaps(flushes, 1.1, 1.5)  # arrived as it ended
    assert not overlaps(flushes, 0.5, 1.0)  # answered as it began
    assert not overlaps([], 0.0, 10.0)
