"""House rules that a test can check: the core imports no SDK, every module says what it is."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "connector"
CORE = ("domain", "services")
SDKS = {
    "requests",
    "msal",
    "twilio",
    "fastapi",
    "starlette",
    "uvicorn",
    "huey",
    "sqlalchemy",
    "psycopg",
    "redis",
    "httpx",
}
ALL_MODULES = sorted(PACKAGE.rglob("*.py"))
CORE_MODULES = [p for p in ALL_MODULES if p.relative_to(PACKAGE).parts[0] in CORE]


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def _name(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


@pytest.mark.parametrize("path", CORE_MODULES, ids=_name)
def test_core_module_imports_no_sdk(path: Path) -> None:
    assert not (_imported_roots(path) & SDKS), f"{_name(path)} imports an SDK"


@pytest.mark.parametrize("path", ALL_MODULES, ids=_name)
def test_every_module_has_a_docstring(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assert ast.get_docstring(tree), f"{_name(path)} has no module docstring"


def test_no_utils_grab_bag() -> None:
    assert not [p for p in ALL_MODULES if p.stem in {"utils", "helpers", "misc"}]


@pytest.mark.parametrize("path", ALL_MODULES, ids=_name)
def test_settings_are_never_built_at_import_time(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Call):
            func = node.value.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            assert called not in {"Settings", "load_settings"}, _name(path)
