"""The SQLite queue keeps its WAL short: with fsync off, the kernel writes back what the queue
wrote on its own schedule, and a long WAL became megabytes sent to the disk at once, which the
journal's next flush had to persist (:class:`connector.worker.queue.ShortWalStorage`)."""

from __future__ import annotations

from pathlib import Path

from connector.worker.queue import make_huey, queue_file

PAGE_AND_HEADER = 4096 + 24  # a WAL frame


def test_the_queue_rewrites_a_short_wal_rather_than_growing_it(tmp_path: Path) -> None:
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    huey = make_huey(state_url)
    done: list[int] = []

    def wake_up(n: int) -> None:
        done.append(n)

    task = huey.task(name="wake_up")(wake_up)
    for n in range(400):  # each an enqueue and a dequeue: two commits, as nudges and drains
        task(n)
        huey.execute(huey.dequeue())
    assert done == list(range(400))
    wal = Path(f"{queue_file(state_url)}-wal")
    # SQLite's default (1,000 pages before a checkpoint) let this grow past 500 frames.
    assert wal.stat().st_size < 40 * PAGE_AND_HEADER
    huey.storage.close()
