"""A started process's heap is frozen so full collections skip it (no event-loop pauses)."""

from __future__ import annotations

import gc
import sys

from connector.bootstrap.heap import settle


def test_settle_freezes_the_heap_and_does_the_first_requests_imports() -> None:
    held = [object() for _ in range(1000)]  # stands for what start-up made
    try:
        settle()
        assert gc.get_freeze_count() >= len(held)
        assert "anyio._backends._asyncio" in sys.modules
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0
