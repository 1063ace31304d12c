"""How a sandbox joins the local stack and the test harness without them naming its vendor.

A sandbox package that holds a `plugin` module exposing `PLUGIN` (a `SandboxPlugin`) is found by
`discover()`: devstack starts it as `python -m sandboxes.<name>` on its port and points ps-sync's settings at
it, the end-to-end harness serves it in a thread, and the demo story asks it to settle an invoice the way a
finance person would. Settings are handed over as the object ps-sync built (sandboxes import nothing of the
product, so a plugin reads it by attribute names it documents).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SandboxPlugin:
    # The vendor, as its package under sandboxes/ and its connector's `system` are named.
    name: str
    # How people write the vendor's name (NetSuite), for what the stack prints.
    title: str
    default_port: int
    # ps-sync settings fields (name -> value) that point ps-sync at the sandbox served at a URL.
    settings_for: Callable[[str], dict[str, Any]]
    # The sandbox process's environment, so it accepts the credentials ps-sync's settings hold.
    environment_for: Callable[[Any], dict[str, str]]
    # The sandbox's ASGI app configured for those settings, for tests that serve it in a thread.
    app_for: Callable[[Any], Any]
    # Settle an invoice in full as a finance person would, through the vendor's API; the payment's id.
    pay: Callable[[Any, str, str], Awaitable[str]]

    @property
    def module(self) -> str:
        return f"sandboxes.{self.name}"

    @property
    def port_variable(self) -> str:
        return f"PSSYNC_{self.name.upper()}_PORT"

    @property
    def environment_prefix(self) -> str:
        return f"PSSYNC_SANDBOX_{self.name.upper()}_"


def discover() -> list[SandboxPlugin]:
    """Every sandbox package with a plugin, by name."""
    import sandboxes

    found: list[SandboxPlugin] = []
    for module in pkgutil.iter_modules(sandboxes.__path__):
        if not module.ispkg:
            continue
        name = f"sandboxes.{module.name}.plugin"
        try:
            plugin_module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name == name:
                continue
            raise
        plugin = plugin_module.PLUGIN
        if not isinstance(plugin, SandboxPlugin) or plugin.name != module.name:
            raise TypeError(f"{name}.PLUGIN must be a SandboxPlugin named {module.name!r}")
        found.append(plugin)
    return sorted(found, key=lambda plugin: plugin.name)
