"""The reliability report's claim kept by the suite: quick forms of three of its scenarios.

Each runs ``benchmarks.reliability`` as the report does (a standalone emulator subprocess
with its fault modes, the default ``connector serve`` with its worker child, signed webhooks
at a steady rate), only shorter, slower and from 100 numbers: Dataverse hanging, connection
resets mid-response and 5xx bursts. Every message answered 200 is in Dataverse exactly once,
and the connector's output has no traceback and no error-level line.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.reliability import (
    SCENARIOS,
    Timing,
    connector_free_env,
    run_scenario,
    seed_template,
)

TIMING = Timing(rate=8.0, lead=1.0, window=3.0, tail=1.0, settle=120.0, numbers=100)
CHOSEN = ("Dataverse hanging", "connection resets mid-response", "5xx bursts")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("reliability")
    yield seed_template(folder, connector_free_env(), TIMING.numbers)


@pytest.mark.slow
@pytest.mark.parametrize("name", CHOSEN)
def test_a_dataverse_fault_loses_and_duplicates_no_answered_message(
    template: Path, name: str
) -> None:
    (scenario,) = [s for s in SCENARIOS if s.name == name]
    result = run_scenario(scenario, TIMING, template, connector_free_env())
    assert result.answered == result.messages == 40
    assert result.lost_sids == []
    assert result.duplicated == 0
    assert result.tracebacks == 0
    assert result.errors == 0  # no error-level line in the connector's output
