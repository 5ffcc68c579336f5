"""Helpers for driving the ``connector`` command as a user does: a real subprocess.

The Dataverse emulator the commands talk to runs in this process, one for the session
(``emulator_url``: fresh; ``installed_emulator_url``: solution schema installed, no rows of
ours), shared with the integration tier (``tests/conftest.py``).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from connector.bootstrap.local_mode import seed_demo
from connector.bootstrap.server_thread import ServerThread
from connector.dataverse.client import DataverseClient
from connector.emulators.dataverse.app import create_emulator_app
from tests.integration.test_installer_emulator import make_client

PUBLIC = "https://sms.example.com"  # the public base URL the fixtures seed with


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


def slowed(app: Any, delay: float) -> Any:
    """The emulator answering every ``$batch`` ``delay`` seconds AFTER it committed it."""

    async def wrapper(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if not (delay and scope["type"] == "http" and scope["path"].endswith("$batch")):
            await app(scope, receive, send)
            return

        async def late(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                await asyncio.sleep(delay)
            await send(message)

        await app(scope, receive, late)

    return wrapper


@dataclass
class Emulator:
    db: Path
    port: int = 0
    delay: float = 0.0
    server: ServerThread | None = None

    def start(self) -> Emulator:
        app = slowed(create_emulator_app(db_path=str(self.db)), self.delay)
        self.server = ServerThread(app, port=self.port).start()
        self.port = self.server.port
        return self

    def stop(self) -> None:
        assert self.server is not None
        self.server.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    emu = Emulator(tmp_path / "dataverse.db").start()
    client = make_client(emu.url)
    seed_demo(client, PUBLIC)
    client.api.close()
    yield emu
    if emu.server is not None:
        emu.stop()


@pytest.fixture
def client(emulator: Emulator) -> Iterator[DataverseClient]:
    dv = make_client(emulator.url)
    yield dv
    dv.api.close()
