"""A client of the sandbox's control endpoints (/_sandbox/...), for tests, the demo and the benchmark."""

from __future__ import annotations

from typing import Any

import httpx

from sandboxes.faults import FaultConfig
from sandboxes.netsuite.config import GovernanceConfig


class NetSuiteSandboxControl:
    def __init__(self, base_url: str, *, http: httpx.AsyncClient | None = None) -> None:
        self._http = http or httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=30.0)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = await self._http.request(method, f"/_sandbox{path}", json=body)
        response.raise_for_status()
        return response.json()

    async def set_faults(self, faults: FaultConfig) -> None:
        await self._call("PUT", "/faults", faults.model_dump(mode="json"))

    async def set_governance(self, governance: GovernanceConfig) -> None:
        await self._call("PUT", "/governance", governance.model_dump(mode="json"))

    async def map_certificate(self, certificate_id: str, pem: str) -> None:
        await self._call("PUT", "/certificates", {"certificate_id": certificate_id, "pem": pem})

    async def revoke_certificate(self, certificate_id: str) -> None:
        await self._call("DELETE", f"/certificates/{certificate_id}")

    async def expire_tokens(self) -> None:
        await self._call("POST", "/expire-tokens")

    async def reset(self) -> None:
        await self._call("POST", "/reset")

    async def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", "/stats")
        return result
