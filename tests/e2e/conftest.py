"""Helpers for driving the ``connector`` command as a user does: a real subprocess.

The Dataverse emulator the commands talk to runs in this process, one for the session
(``emulator_url``: fresh; ``installed_emulator_url``: solution schema installed, no rows of
ours), shared with the integration tier (``tests/conftest.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest


def connector_env(tmp_path: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment minus CONNECTOR_* variables, state kept under ``tmp_path``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
    env["CONNECTOR_STATE__URL"] = f"sqlite:///{tmp_path / 'state.db'}"
    env.update(extra or {})
    return env


def run_cli(
    *args: str, env: Mapping[str, str], timeout: float = 60, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``connector ARGS`` to completion."""
    return subprocess.run(  # noqa: S603 - our own CLI with our own arguments
        [sys.executable, "-m", "connector", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        check=False,
    )


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """A clean environment for one CLI run."""
    return connector_env(tmp_path)
