"""The NetSuite sandbox as the local stack and the test harness take it (see sandboxes/plugin.py).

It reads these attributes of ps-sync's settings: netsuite_account_id, netsuite_consumer_key,
netsuite_consumer_secret, netsuite_token_id, netsuite_token_secret, netsuite_client_id (secrets as objects
with get_secret_value()), and netsuite_base_url to pay.
"""

from __future__ import annotations

from typing import Any

from sandboxes.netsuite.app import create_app
from sandboxes.netsuite.config import NetSuiteSandboxConfig
from sandboxes.netsuite.finance import NetSuiteFinanceUser
from sandboxes.plugin import SandboxPlugin


def _credentials(settings: Any) -> dict[str, str]:
    return {
        "account_id": settings.netsuite_account_id,
        "consumer_key": settings.netsuite_consumer_key,
        "consumer_secret": settings.netsuite_consumer_secret.get_secret_value(),
        "token_id": settings.netsuite_token_id,
        "token_secret": settings.netsuite_token_secret.get_secret_value(),
        "client_id": settings.netsuite_client_id,
    }


def settings_for(url: str) -> dict[str, Any]:
    return {"netsuite_base_url": url}


def environment_for(settings: Any) -> dict[str, str]:
    return {
        f"PSSYNC_SANDBOX_NETSUITE_{name.upper()}": value for name, value in _credentials(settings).items()
    }


def app_for(settings: Any) -> Any:
    return create_app(NetSuiteSandboxConfig.model_validate(_credentials(settings)))


async def pay(settings: Any, invoice_id: str, reference: str) -> str:
    finance = NetSuiteFinanceUser.from_settings(settings)
    try:
        return await finance.accept_payment(invoice_id, memo=reference)
    finally:
        await finance.aclose()


PLUGIN = SandboxPlugin(
    name="netsuite",
    title="NetSuite",
    default_port=8704,
    settings_for=settings_for,
    environment_for=environment_for,
    app_for=app_for,
    pay=pay,
)
