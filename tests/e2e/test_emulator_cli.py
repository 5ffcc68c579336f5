"""``connector emulator`` as a user runs it: serves on loopback, keeps its data on restart."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.e2e.conftest import connector_env

URL_LINE = re.compile(r"listening on (https?://127\.0\.0\.1:\d+/api/data/v9\.2/)")
AUTH = {"Authorization": "Bearer e2e"}


@contextmanager
def _emulator(tmp_path: Path, *args: str) -> Iterator[tuple[str, list[str]]]:
    process = subprocess.Popen(  # noqa: S603 - our own CLI with our own arguments
        [sys.executable, "-m", "connector", "emulator", "--port", "0", *args],
        env=connector_env(tmp_path),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                break
            seen.append(line)
            match = URL_LINE.search(line)
            if match:
                yield match.group(1), seen
                return
        raise AssertionError("emulator never printed its URL:\n" + "".join(seen))
    finally:
        process.terminate()
        process.communicate(timeout=30)


def test_emulator_serves_and_survives_a_restart_with_its_data(tmp_path: Path) -> None:
    db = tmp_path / "dataverse.db"
    with _emulator(tmp_path, "--db", str(db)) as (root, _):
        assert requests.get(root + "contacts", timeout=10).status_code == 401
        created = requests.post(
            root + "contacts", json={"firstname": "Kay", "lastname": "Lo"}, headers=AUTH, timeout=10
        )
        assert created.status_code == 204
        record_id = created.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
    with _emulator(tmp_path, "--db", str(db)) as (root, _):
        record = requests.get(root + f"contacts({record_id})", headers=AUTH, timeout=10)
        assert record.status_code == 200
        assert record.json()["fullname"] == "Kay Lo"


def test_emulator_in_memory_with_tls(tmp_path: Path) -> None:
    with _emulator(tmp_path, "--tls") as (root, seen):
        assert root.startswith("https://")
        certificate = next(line for line in seen if line.startswith("Certificate"))
        path = certificate.split(": ", 1)[1].strip()
        response = requests.get(root + "WhoAmI", headers=AUTH, timeout=10, verify=path)
        assert response.status_code == 200
