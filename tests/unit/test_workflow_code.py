"""Workflow modules imported again (as the sandbox does for every run) share their code objects, and
nothing else: each import still gets fresh globals, functions and classes."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from runs.workflow_code import share_workflow_code

SOURCE = "STATE: list[int] = []\n\n\nclass Run:\n    def answer(self) -> int:\n        return {answer}\n"


@pytest.fixture
def package(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "shared_code_pkg"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "run.py").write_text(SOURCE.format(answer=1))
    (tmp_path / "other_code_pkg.py").write_text(SOURCE.format(answer=1))
    sys.path.insert(0, str(tmp_path))
    yield root
    sys.path.remove(str(tmp_path))
    for name in ("shared_code_pkg.run", "shared_code_pkg", "other_code_pkg"):
        sys.modules.pop(name, None)


def _import_afresh(name: str) -> object:
    sys.modules.pop(name, None)
    importlib.invalidate_caches()
    return importlib.import_module(name)


def test_a_module_imported_again_shares_its_code_but_not_its_state(package: Path) -> None:
    share_workflow_code("shared_code_pkg")

    first, second = _import_afresh("shared_code_pkg.run"), _import_afresh("shared_code_pkg.run")

    assert first is not second
    assert first.STATE is not second.STATE  # type: ignore[attr-defined]
    assert first.Run is not second.Run  # type: ignore[attr-defined]
    assert first.Run.answer.__code__ is second.Run.answer.__code__  # type: ignore[attr-defined]


def test_a_changed_source_is_loaded_anew_and_other_modules_as_ever(package: Path) -> None:
    share_workflow_code("shared_code_pkg")
    before = _import_afresh("shared_code_pkg.run")
    source = package / "run.py"
    source.write_text(SOURCE.format(answer=2))
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))

    after = _import_afresh("shared_code_pkg.run")

    assert after.Run().answer() == 2 and before.Run().answer() == 1  # type: ignore[attr-defined]
    outside = _import_afresh("other_code_pkg"), _import_afresh("other_code_pkg")
    assert outside[0].Run.answer.__code__ is not outside[1].Run.answer.__code__  # type: ignore[attr-defined]
