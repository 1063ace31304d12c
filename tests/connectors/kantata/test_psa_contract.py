"""Kantata runs the PSA role contract through the real connector against the sandbox."""

from __future__ import annotations

from ..contract.psa_contract import PsaContract


class TestKantataPsaContract(PsaContract):
    pass
