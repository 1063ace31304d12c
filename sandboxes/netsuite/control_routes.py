"""The sandbox's own endpoints (/_sandbox/...): faults, governance, certificates, tokens, reset, stats."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from sandboxes.faults import FaultConfig
from sandboxes.netsuite.config import GovernanceConfig
from sandboxes.netsuite.sandbox import NetSuiteSandbox


class CertificateMapping(BaseModel):
    certificate_id: str
    pem: str


def add_control_routes(app: FastAPI, sandbox: NetSuiteSandbox) -> None:
    @app.get("/_sandbox/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.put("/_sandbox/faults")
    async def set_faults(faults: FaultConfig) -> dict[str, Any]:
        sandbox.plan.configure(faults)
        return faults.model_dump()

    @app.put("/_sandbox/governance")
    async def set_governance(governance: GovernanceConfig) -> dict[str, Any]:
        sandbox.governance.configure(governance)
        return governance.model_dump()

    @app.put("/_sandbox/certificates")
    async def map_certificate(mapping: CertificateMapping) -> dict[str, Any]:
        """Map a certificate (or public key) to the integration, as Client Credentials Setup does."""
        sandbox.certificates.map(mapping.certificate_id, mapping.pem)
        return {"certificates": sandbox.certificates.ids()}

    @app.delete("/_sandbox/certificates/{certificate_id}")
    async def revoke_certificate(certificate_id: str) -> dict[str, Any]:
        sandbox.certificates.revoke(certificate_id)
        return {"certificates": sandbox.certificates.ids()}

    @app.post("/_sandbox/expire-tokens")
    async def expire_tokens() -> dict[str, str]:
        sandbox.tokens.expire_all()
        return {"status": "expired"}

    @app.post("/_sandbox/reset")
    async def reset() -> dict[str, str]:
        sandbox.reset()
        return {"status": "reset"}

    @app.get("/_sandbox/stats")
    async def stats() -> dict[str, Any]:
        return sandbox.stats()
