"""The account's set-up a write needs by internal id: currencies, tax codes, the service item.

NetSuite references records by internal id ({"id": "2"}); ps-sync's settings and canonical models name
them (USD, the entity's tax codes, the item lines are booked against). The ids are read once with SuiteQL
and kept for the connector's life: they are set-up, not business data, and change only when finance
changes the account's configuration (a worker restart picks that up; an unknown name is looked up again
before it is refused).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal

from connectors.netsuite import suiteql
from connectors.netsuite.client import NetSuiteClient
from connectors.netsuite.wire import decimal


@dataclass(frozen=True)
class TaxCode:
    id: str
    name: str
    percent: Decimal


class AccountSetup:
    def __init__(self, client: NetSuiteClient, *, service_item: str) -> None:
        self._client = client
        self.service_item_name = service_item
        self._currency_ids: dict[str, str] = {}
        self._currency_codes: dict[str, str] = {}
        self._tax_codes: dict[str, TaxCode] = {}
        self._tax_codes_by_id: dict[str, TaxCode] = {}
        self._items: dict[str, str] = {}
        # Item id -> the number of the income account its sales book to.
        self._item_accounts: dict[str, str] = {}
        self._lock = asyncio.Lock()

    async def _load_currencies(self) -> None:
        rows = await self._client.suiteql(suiteql.CURRENCIES)
        self._currency_ids = {str(row["symbol"]).upper(): str(row["id"]) for row in rows}
        self._currency_codes = {code_id: code for code, code_id in self._currency_ids.items()}

    async def _load_tax_codes(self) -> None:
        rows = await self._client.suiteql(suiteql.TAX_CODES)
        codes = [
            TaxCode(id=str(row["id"]), name=str(row["itemid"]), percent=decimal(row.get("rate") or "0"))
            for row in rows
            if str(row.get("isinactive", "F")) != "T"
        ]
        self._tax_codes = {code.name: code for code in codes}
        self._tax_codes_by_id = {code.id: code for code in codes}

    async def _load_items(self) -> None:
        rows = [row for row in await self._client.suiteql(suiteql.ITEMS) if str(row.get("isinactive")) != "T"]
        accounts = {
            str(row["id"]): str(row["acctnumber"])
            for row in await self._client.suiteql(suiteql.ACCOUNTS)
            if row.get("acctnumber")
        }
        self._items = {str(row["itemid"]): str(row["id"]) for row in rows}
        self._item_accounts = {
            str(row["id"]): accounts[str(row["incomeaccount"])]
            for row in rows
            if str(row.get("incomeaccount") or "") in accounts
        }

    async def currency_id(self, code: str) -> str | None:
        async with self._lock:
            if code not in self._currency_ids:
                await self._load_currencies()
            return self._currency_ids.get(code)

    async def currency_code(self, currency_id: str) -> str:
        async with self._lock:
            if currency_id not in self._currency_codes:
                await self._load_currencies()
        try:
            return self._currency_codes[currency_id]
        except KeyError:
            raise ValueError(
                f"NetSuite currency {currency_id} is not in the account's currency list"
            ) from None

    async def tax_code(self, name: str) -> TaxCode | None:
        async with self._lock:
            if name not in self._tax_codes:
                await self._load_tax_codes()
            return self._tax_codes.get(name)

    async def tax_code_by_id(self, tax_id: str) -> TaxCode | None:
        async with self._lock:
            if tax_id not in self._tax_codes_by_id:
                await self._load_tax_codes()
            return self._tax_codes_by_id.get(tax_id)

    async def service_item_id(self) -> str | None:
        async with self._lock:
            if self.service_item_name not in self._items:
                await self._load_items()
            return self._items.get(self.service_item_name)

    async def item_for_account(self, account_code: str) -> str | None:
        """An active item whose sales book to the account: the service item when it does, else the first."""
        async with self._lock:
            if account_code not in self._item_accounts.values():
                await self._load_items()
        service = self._items.get(self.service_item_name)
        if service is not None and self._item_accounts.get(service) == account_code:
            return service
        found = sorted((int(i), i) for i, code in self._item_accounts.items() if code == account_code)
        return found[0][1] if found else None

    async def account_of_item(self, item_id: str) -> str | None:
        async with self._lock:
            if item_id not in self._item_accounts:
                await self._load_items()
        return self._item_accounts.get(item_id)
