"""The suite under pytest-xdist (`make test` runs it on several worker processes, `--dist loadgroup`).

Every worker is a whole test session of its own: it starts its own Temporal servers, sandboxes, Tryton server
and PostgreSQL databases (all on free ports or under random names), so workers share nothing but the
machine. A few things still need the controller's help, and live here:

- Tests that share a module-, class- or package-scoped fixture are kept on one worker, so the fixture is
  built once rather than once per worker that happens to take one of them (a wheel build, a module's own
  ingress). So are tests marked `xdist_group(name)`.
- pytest-xdist 3.8 groups `--dist loadgroup` tests by appending the group to each node id, which pytest 9
  no longer lets it do (the id lives elsewhere now), so its groups silently fall apart. Instead each worker
  writes its tests' groups to a file named by the controller, and the controller's scheduler reads them:
  node ids stay as they are.
- The folders whose tests run longest are handed out first (LONGEST_FIRST), so no worker starts a
  minutes-long test when the others are nearly done. A serial run keeps the collection's order.
- Whatever a worker measured for the closing summary (Tryton's set-up), and the lines its tests wrote to
  the terminal reporter (the ingress fuzz's tally), reach the controller through the worker's
  `workeroutput`, since only the controller's terminal is shown.

Which tests share a worker, and in which order, changes from run to run: a test must leave its worker's
servers as it found them (tests/support/temporal.py ends the runs a time-skipping test leaves open).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

# Fixture scopes narrower than the session but wider than one test: a worker that runs only some of the
# tests under such a fixture would set it up again.
SHARED_SCOPES: dict[str, type[pytest.Collector]] = {
    "package": pytest.Package,
    "module": pytest.Module,
    "class": pytest.Class,
}
# The key in each worker's `workerinput` that names the file of test groups.
GROUPS_FILE = "pssync_xdist_groups_file"
# Folders whose tests run longest (a whole stack, minutes of chaos, a benchmark, a browser), handed out
# first: the workers run short of work together at the end instead of one of them starting a long test
# when the rest are done.
LONGEST_FIRST = (
    "tests/e2e/",
    "tests/bench/",
    "tests/browser/",
    "tests/workflows/",
    "tests/replay/",
    "tests/ingress/",
)


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def worker_output(config: pytest.Config) -> dict[str, Any] | None:
    """The dict a worker hands to the controller when it finishes (None outside a worker)."""
    output = getattr(config, "workeroutput", None)
    return output if isinstance(output, dict) else None


# -- which tests belong together -----------------------------------------------------------------------------


def _shared_scope_node(item: pytest.Item) -> str | None:
    """The node id of the widest package/module/class that a fixture of this test is scoped to."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return None
    widest: str | None = None
    for name in info.names_closure:
        definitions = info.name2fixturedefs.get(name)
        if not definitions or definitions[-1].scope not in SHARED_SCOPES:
            continue
        holder = item.getparent(SHARED_SCOPES[definitions[-1].scope])
        if holder is not None and (widest is None or len(holder.nodeid) < len(widest)):
            widest = holder.nodeid
    return widest


def group_of(item: pytest.Item) -> str | None:
    """The test's `xdist_group` names (as xdist joins them), else the node whose shared fixture it uses."""
    names = sorted(
        {str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
         for mark in item.iter_markers("xdist_group")}
    )  # fmt: skip
    if names:
        return "_".join(names)
    node = _shared_scope_node(item)
    return f"shared:{node}" if node is not None else None


def longest_first(items: list[pytest.Item]) -> None:
    """In a worker: the folders of LONGEST_FIRST first, in that order; otherwise the collection's order.
    Every worker sorts the same collection alike, as xdist requires."""

    def rank(item: pytest.Item) -> int:
        ranks = (i for i, folder in enumerate(LONGEST_FIRST) if item.nodeid.startswith(folder))
        return next(ranks, len(LONGEST_FIRST))

    items.sort(key=rank)


def write_groups(config: pytest.Config, items: Iterable[pytest.Item]) -> None:
    """In a worker: hand the controller's scheduler each grouped test's group."""
    workerinput = getattr(config, "workerinput", None)
    if not workerinput or GROUPS_FILE not in workerinput:
        return
    groups = {item.nodeid: group for item in items if (group := group_of(item)) is not None}
    target = Path(workerinput[GROUPS_FILE])
    # Every worker collects the same tests and writes the same groups; a rename keeps each write whole.
    partial = target.with_name(f"{target.name}.{workerinput['workerid']}")
    partial.write_text(json.dumps(groups))
    os.replace(partial, target)


class GroupsFile:
    """On the controller: the file the workers write the groups to, removed when the session ends."""

    def __init__(self) -> None:
        self._directory: Path | None = None

    @property
    def path(self) -> Path:
        if self._directory is None:
            self._directory = Path(tempfile.mkdtemp(prefix="pssync-xdist-"))
        return self._directory / "groups.json"

    def read(self) -> dict[str, str]:
        if self._directory is None or not self.path.exists():
            return {}
        groups = json.loads(self.path.read_text())
        return groups if isinstance(groups, dict) else {}

    def remove(self) -> None:
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None


def group_scheduler(config: pytest.Config, log: Any, groups: GroupsFile) -> Any:
    """`--dist loadgroup` with the groups the workers wrote: each group is one unit of work for one worker,
    every other test a unit of its own, handed out as workers run short (xdist's LoadGroupScheduling)."""
    from xdist.scheduler import LoadGroupScheduling

    class SharedFixtureScheduling(LoadGroupScheduling):
        _groups: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            # Called first when every worker has collected, so every worker has written the file by now.
            if self._groups is None:
                self._groups = groups.read()
            group = self._groups.get(nodeid)
            return group if group is not None else str(super()._split_scope(nodeid))

    return SharedFixtureScheduling(config, log)


# -- what the workers measured and said ----------------------------------------------------------------------


class LineRelay:
    """In a worker: the lines tests write to the terminal reporter while they run (their own tallies, such
    as the ingress fuzz's), kept for the controller to print, since a worker's terminal goes nowhere.
    A print under `capsys.disabled()` goes to the worker's own stdout and is not relayed."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.running = False

    def install(self, config: pytest.Config) -> None:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return
        write_line = reporter.write_line

        def relaying(line: str | bytes, **markup: bool) -> None:
            if self.running:
                text = line.decode(errors="replace") if isinstance(line, bytes) else line
                self.lines.append(text.strip("\n"))
            write_line(line, **markup)

        reporter.write_line = relaying



def merge_timings(per_worker: Iterable[Mapping[str, float]]) -> tuple[dict[str, float], int]:
    """Each step's seconds summed over the workers that did it, and how many workers reported any."""
    merged: dict[str, float] = {}
    reporting = 0
    for timings in per_worker:
        if not timings:
            continue
        reporting += 1
        for name, seconds in timings.items():
            merged[name] = round(merged.get(name, 0.0) + seconds, 2)
    return merged, reporting
