"""Data flows one way: no module imports one that comes later in the tap's pipeline.

config -> report -> columns -> settings -> ledger/plan -> pacer -> answers -> client ->
scheduler -> records -> emission -> output -> streams -> tap. The sandbox shares only the
API's facts and names with the tap, so the two cannot drift apart, nor the tap lean on the
sandbox.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "tap_appsflyer_cohort"
#: Every module of the tap, in pipeline order: each may import only those before it.
LAYERS = [
    "contract",
    "errors",
    "naming",
    "fields",
    "clock",
    "report",
    "columns",
    "settings",
    "ledger",
    "planner",
    "pacer",
    "responses",
    "client",
    "scheduler",
    "records",
    "emission",
    "output",
    "streams",
    "tap",
    "__main__",
]
SANDBOX_MAY_IMPORT = {"contract", "naming"}


def _imports(path: Path) -> set[str]:
    """The tap modules (first component under the package) a file imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            if parts[0] != "tap_appsflyer_cohort":
                continue
            if len(parts) > 1:
                found.add(parts[1])
            else:
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "tap_appsflyer_cohort" and len(parts) > 1:
                    found.add(parts[1])
    return found


def test_every_tap_module_has_a_layer() -> None:
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert modules == set(LAYERS)


@pytest.mark.parametrize("module", LAYERS)
def test_no_module_imports_a_later_one(module: str) -> None:
    allowed = set(LAYERS[: LAYERS.index(module)])
    imported = _imports(PACKAGE / f"{module}.py")
    assert imported <= allowed, f"{module} imports {sorted(imported - allowed)}"


def test_the_sandbox_shares_only_the_contract_and_names() -> None:
    for path in (PACKAGE / "sandbox").glob("*.py"):
        imported = _imports(path) - {"sandbox"}
        assert imported <= SANDBOX_MAY_IMPORT, f"{path.name} imports {sorted(imported)}"
