"""The disk-floor benchmark: steady flushes on real files, and what it makes of stalls."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.disk_floor import (
    FlushTime,
    Summary,
    escapable,
    flush_in_parallel,
    hedged_ms,
    main,
    report,
    stalls,
)


def ms(start: float, millis: float) -> FlushTime:
    return FlushTime(start, start + millis / 1000)


def test_files_are_flushed_at_the_rate_asked_then_removed(tmp_path: Path) -> None:
    runs = flush_in_parallel(tmp_path, files=2, rate=100, seconds=0.2)
    assert [len(flushes) for flushes in runs] == [20, 20]
    for flushes in runs:
        assert all(flush.ms > 0 for flush in flushes)
        starts = [flush.start for flush in flushes]
        assert starts == sorted(starts)
        assert starts[-1] - starts[0] >= 0.17  # steady over the whole span, not a burst
    assert list(tmp_path.iterdir()) == []


def test_a_stall_is_escapable_only_if_another_flush_began_after_it_and_ended_within_the_goal() -> (
    None
):
    stall = ms(10.0, 200)
    assert escapable(stall, [ms(10.005, 2)])  # began after, done 7 ms in
    assert escapable(stall, [ms(10.0, 30)])  # done exactly as the goal ran out
    assert not escapable(stall, [ms(10.005, 40)])  # through, but past the goal
    assert not escapable(stall, [ms(9.999, 2)])  # began before the stall
    assert not escapable(stall, [ms(10.031, 1)])  # began after the goal ran out
    assert not escapable(stall, [])
    assert hedged_ms(stall, [ms(10.01, 50), ms(10.02, 5), ms(9.0, 1)]) == pytest.approx(25)
    assert hedged_ms(stall, [ms(10.1, 500)]) == pytest.approx(200)  # its own end came first
    assert hedged_ms(stall, []) == pytest.approx(200)


def test_stalls_are_the_flushes_over_the_goal() -> None:
    flushes = [ms(0, 29.9), ms(1, 30.1), ms(2, 0.4), ms(3, 250)]
    assert stalls(flushes) == [flushes[1], flushes[3]]
    assert stalls(flushes, goal_ms=100) == [flushes[3]]


def test_summary_gives_the_quantiles_and_the_count_over_the_goal() -> None:
    flushes = [ms(i, 1.0) for i in range(990)] + [ms(1000 + i, 50.0 + i) for i in range(10)]
    summary = Summary.of(flushes)
    assert summary.count == 1000
    assert summary.p50 == pytest.approx(1.0)
    assert summary.p99 > 1.0  # the 990th of 1,000 sits at the first slow one
    assert summary.top == pytest.approx(59.0)
    assert summary.over_goal == 10


def test_report_says_how_far_the_floor_is_from_the_goal_and_which_stalls_were_shared() -> None:
    shared = [ms(0.0, 1), ms(1.0, 120), ms(2.0, 1)]
    other = [ms(0.005, 1), ms(1.002, 118), ms(2.005, 1)]  # stalled with it: not escapable
    lone = [ms(3.0, 1), ms(4.0, 60), ms(5.0, 1)]
    rescue = [ms(3.005, 1), ms(4.002, 3), ms(5.005, 1)]  # got through meanwhile
    lines = report([shared + lone, other + rescue], rate=100, seconds=6)
    assert lines[0].startswith("4 KB written and flushed 100 times a second on each of 2 files")
    assert "slowest flush 120.0 ms: 4.00x the webhook max goal (30 ms)" in lines
    assert lines[-1] == (
        "flushes over 30 ms: 3; of them, another file's flush got through within the goal "
        "meanwhile: 1; the longest wait had the first of any file's flushes counted: 120.0 ms"
    )
    assert [line.split()[-1] for line in lines[2:4]] == ["2", "1"]  # over 30 ms, per file


def test_the_command_runs_and_refuses_nonsense(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["--seconds", "0.1", "--rate", "100", "--files", "2", "--folder", str(tmp_path)])
    printed = capsys.readouterr().out.splitlines()
    assert printed[1].split()[:3] == ["file", "flushes", "p50"]
    assert [line.split()[0] for line in printed[2:4]] == ["0", "1"]
    assert printed[4].startswith("slowest flush ")
    assert list(tmp_path.iterdir()) == []
    for nonsense in (["--seconds", "0"], ["--rate", "100", "--seconds", "0.01"], ["--files", "0"]):
        with pytest.raises(SystemExit):
            main([*nonsense, "--folder", str(tmp_path)])
    with pytest.raises(SystemExit):
        main(["--folder", str(tmp_path / "missing")])
    assert "is not a folder" in capsys.readouterr().err


def test_a_file_that_cannot_be_written_is_an_error_not_an_empty_figure(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        flush_in_parallel(tmp_path / "missing", files=2, rate=100, seconds=0.05)
