"""What local mode prints must be runnable as printed."""

from __future__ import annotations

from connector.bootstrap.local_mode import cli_command


def test_printed_command_is_the_script_the_user_ran() -> None:
    assert cli_command(".venv/bin/connector") == ".venv/bin/connector"
    assert cli_command("/opt/my tools/connector") == "'/opt/my tools/connector'"


def test_printed_command_falls_back_to_connector_under_python_m() -> None:
    assert cli_command("/src/connector/__main__.py") == "connector"
