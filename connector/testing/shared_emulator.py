"""One Dataverse emulator on loopback for a whole test session, clean again for every test.

Starting an emulator is cheap, stopping its server is not (about 0.2 s), and installing the
solution schema takes 1-2 s. A test session starts one :class:`SharedEmulator`; each test
then asks for one of two clean states:

* :meth:`SharedEmulator.reset` - a fresh emulator: ``POST /_emulator/reset`` drops every
  row, table and definition and seeds the standard tables again;
* :meth:`SharedEmulator.restore_installed` - the solution schema installed by the real
  installer and nothing else (no rows of ours, counters at zero). The schema is installed
  once, on first use; the SQLite database is then copied aside and copied back for each test,
  which also undoes metadata a test changed.

The copy is the in-process emulator's own :meth:`EmulatorState.snapshot
<connector.emulators.dataverse.state.EmulatorState.snapshot>` and ``restore``.
"""

from __future__ import annotations

import sqlite3

import requests

from connector.bootstrap.server_thread import ServerThread
from connector.emulators.dataverse.app import create_emulator_app
from connector.emulators.dataverse.router import Emulator
from connector.schema.installer import Installer
from connector.schema.spec import load_schema
from connector.testing.emulator_client import emulator_client


class SharedEmulator:
    """An emulator served on 127.0.0.1 until :meth:`close`; ``url`` has no trailing slash."""

    def __init__(self) -> None:
        self.core = Emulator()
        self._server = ServerThread(create_emulator_app(emulator=self.core)).start()
        self.url = self._server.url
        self._installed: sqlite3.Connection | None = None

    def reset(self) -> None:
        """Back to a fresh emulator (standard tables and seed rows only), over HTTP."""
        answer = requests.post(f"{self.url}/_emulator/reset", timeout=30)
        answer.raise_for_status()

    def restore_installed(self) -> None:
        """Back to "solution schema just installed": installs it on the first call."""
        if self._installed is None:
            self.reset()
            client = emulator_client(self.url, attempts=2)
            try:
                report = Installer(client, load_schema(), poll_interval=0.02).apply()
            finally:
                client.api.close()
            if not report.complete:
                raise RuntimeError(f"schema install stopped early: {report}")
            self._installed = self.core.snapshot()
        self.core.restore(self._installed)

    def close(self) -> None:
        """Stop the server and drop the copy."""
        self._server.stop()
        if self._installed is not None:
            self._installed.close()
        self.core.store.close()
