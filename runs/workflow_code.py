"""One compiled copy of the workflow modules' code for every run a worker holds.

Temporal's sandbox imports a workflow's modules afresh for each run, so that no run sees another's module
state. Each fresh import also loads the module's code objects again (unmarshalled from bytecode, or compiled
from source where no bytecode was written), and every cached run keeps its own copy: measured, about 16 KB
of the 145 KB a waiting InvoiceToCash run holds, more for TimeToBilling's several modules, times every run
the worker keeps in its cache, most of them waiting on a timer for weeks. Code objects are immutable, so
runs can share them: each import still executes the module into a fresh namespace, with new functions,
classes and globals, exactly as before; only the loading is done once per module (again when its source
file changes).
"""

from __future__ import annotations

import os
import threading
from importlib.machinery import SourceFileLoader
from types import CodeType
from typing import Any

_lock = threading.Lock()
_packages: set[str] = set()
_cache: dict[str, tuple[int, CodeType]] = {}
_load_code = SourceFileLoader.get_code


def share_workflow_code(*packages: str) -> None:
    """Load the code of the modules in `packages` (and below) once per process, however often imported."""
    with _lock:
        _packages.update(packages)
        if SourceFileLoader.get_code is not _shared_get_code:
            SourceFileLoader.get_code = _shared_get_code  # type: ignore[method-assign,assignment]


def _shared(fullname: str) -> bool:
    return any(fullname == package or fullname.startswith(package + ".") for package in _packages)


def _shared_get_code(self: SourceFileLoader, fullname: str) -> Any:
    if not _shared(fullname):
        return _load_code(self, fullname)
    path = self.get_filename(fullname)
    stamp = os.stat(path).st_mtime_ns
    cached = _cache.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    code = _load_code(self, fullname)
    if code is not None:
        _cache[path] = (stamp, code)
    return code

