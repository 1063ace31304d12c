"""The vendor sandboxes share no code with the product.

A sandbox stands in for Salesforce, Kantata or Xero. If it borrowed the connector's date format, JSON
encoder or signature function, a mistake there would be made identically on both sides of every test and
nothing could catch it; so each sandbox keeps its own reading of the vendor's documentation.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SANDBOXES = ROOT / "sandboxes"


def _packaged() -> set[str]:
    # What the wheel ships is the product, so a package added or renamed there is covered at once.
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    return {
        *setuptools.get("py-modules", []),
        *(p.rstrip("*") for p in setuptools["packages"]["find"]["include"]),
    }


PRODUCT = _packaged() | {
    "canonical",
    "domain",
    "ledger",
    "connectors",
    "activities",
    "workflows",
    "runs",
    "ingress",
    "observability",
    "worker",
    "cli",
    "settings",
}
SOURCES = sorted(SANDBOXES.rglob("*.py"))


def _imported(source: str, package: list[str]) -> Iterator[tuple[int, str]]:
    """Every module named by an import statement, at any depth, or by an importlib call with a literal."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # A relative import climbing out of sandboxes/ lands in the product's top level.
                base = package[: max(len(package) - node.level + 1, 0)]
                module = ".".join([*base, *(node.module.split(".") if node.module else [])])
                names = [module] if node.module else [f"{module}.{a.name}".lstrip(".") for a in node.names]
                for name in names:
                    yield node.lineno, name
            else:
                yield node.lineno, node.module or ""
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (isinstance(node.func, ast.Name) and node.func.id == "__import__")
                or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
            )
        ):
            yield node.lineno, node.args[0].value


def _product_imports(path: Path) -> list[str]:
    # Dropping the last part gives the package for a module and for an `__init__.py` alike.
    package = list(path.relative_to(ROOT).with_suffix("").parts[:-1])
    return [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for line, module in _imported(path.read_text(encoding="utf-8"), package)
        if module.split(".")[0] in PRODUCT
    ]


def test_the_walk_sees_the_sandboxes() -> None:
    assert len(SOURCES) > 20, f"expected the sandbox sources under {SANDBOXES}"


def test_the_product_is_read_from_the_packaging() -> None:
    assert {"connectors", "canonical"} <= _packaged()
    assert "sandboxes" not in PRODUCT


def test_the_walk_finds_imports_hidden_in_functions_relative_paths_and_importlib() -> None:
    source = (
        "import json\n"
        "from sandboxes.store import SandboxStore\n"
        "def late():\n"
        "    from connectors.xero import wire\n"
        "    from ... import settings\n"
        "    from ..store import Collection\n"
        "    return importlib.import_module('ledger.store')\n"
    )
    found = {module for _, module in _imported(source, ["sandboxes", "xero"])}
    assert found == {"json", "sandboxes.store", "connectors.xero", "settings", "ledger.store"}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_sandbox_imports_no_product_code(path: Path) -> None:
    offending = _product_imports(path)
    assert not offending, "a sandbox must not import product code:\n" + "\n".join(offending)
