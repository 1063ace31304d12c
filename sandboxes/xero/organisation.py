"""One Xero organisation (tenant) in the sandbox store: its collections, the chart it books against, and
where its events go.
"""

from __future__ import annotations

from sandboxes.store import Collection, SandboxStore
from sandboxes.xero import chart
from sandboxes.xero.batches import Publish
from sandboxes.xero.documents import Chart


class Organisation:
    def __init__(self, store: SandboxStore, tenant_id: str, publish: Publish) -> None:
        self.tenant_id = tenant_id
        self.store = store
        self.publish = publish
        self.chart = Chart(
            accounts={a["Code"]: a for a in chart.accounts()},
            tax_rates={t["TaxType"]: t for t in chart.tax_rates()},
            items={i["Code"]: i for i in chart.items()},
        )
        self.currencies = {c["Code"] for c in chart.currencies()}

    def _collection(self, name: str) -> Collection:
        # Looked up on each use so a store reset leaves no stale collection behind.
        return self.store.collection(f"{self.tenant_id}:{name}")

    @property
    def contacts(self) -> Collection:
        return self._collection("contacts")

    @property
    def invoices(self) -> Collection:
        return self._collection("invoices")

    @property
    def payments(self) -> Collection:
        return self._collection("payments")

    @property
    def credit_notes(self) -> Collection:
        return self._collection("credit_notes")

    @property
    def tracking_categories(self) -> Collection:
        return self._collection("tracking_categories")

    @property
    def manual_journals(self) -> Collection:
        return self._collection("manual_journals")

    @property
    def settings(self) -> Collection:
        """Organisation settings kept by the sandbox's control endpoints (lock dates)."""
        return self._collection("settings")

    def seq(self, name: str) -> str:
        """The store's name for one of this organisation's number sequences."""
        return f"{self.tenant_id}:{name}"
