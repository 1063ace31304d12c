"""Xero passes the ERP role contract (against the sandbox, spec-validated)."""

from __future__ import annotations

from ..contract.erp_contract import ErpContract


class TestXeroErpContract(ErpContract):
    pass
