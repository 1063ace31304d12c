"""The codec server the Temporal UI calls: decodes our encrypted payloads for authorised people only."""

from __future__ import annotations

import base64

import httpx
from temporalio.api.common.v1 import Payload

from ingress.identity import mint_dev_token
from runs.codec import EncryptionCodec

from ..support.system import System


async def _encrypted(system: System, text: str) -> dict[str, object]:
    [payload] = await EncryptionCodec.from_settings(system.settings).encode(
        [Payload(metadata={"encoding": b"json/plain"}, data=text.encode())]
    )
    return {
        "metadata": {k: base64.b64encode(v).decode() for k, v in payload.metadata.items()},
        "data": base64.b64encode(payload.data).decode(),
    }


def _token(system: System, role: str) -> str:
    return next(token for token, has in system.settings.token_roles().items() if has == role)


async def test_ops_can_decode_payloads_for_the_temporal_ui(system: System) -> None:
    assert system.ingress is not None
    body = {"payloads": [await _encrypted(system, '{"total": "10000.00"}')]}
    async with httpx.AsyncClient(base_url=system.ingress.url) as http:
        response = await http.post(
            "/codec/decode",
            json=body,
            headers={
                "Authorization": f"Bearer {_token(system, 'ops')}",
                "X-Namespace": "default",
                "Origin": system.settings.temporal_ui_url,
            },
        )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == system.settings.temporal_ui_url
    [decoded] = response.json()["payloads"]
    assert base64.b64decode(decoded["data"]) == b'{"total": "10000.00"}'


async def test_decode_without_a_token_outside_development_is_refused(system: System) -> None:
    assert system.ingress is not None and system.settings.environment == "test"
    body = {"payloads": [await _encrypted(system, "secret")]}
    async with httpx.AsyncClient(base_url=system.ingress.url) as http:
        assert (await http.post("/codec/decode", json=body)).status_code == 401
        assert (
            await http.post(
                "/codec/decode",
                json={"payloads": "nope"},
                headers={"Authorization": f"Bearer {_token(system, 'ops')}"},
            )
        ).status_code == 422


async def test_a_persons_signed_token_decodes_and_a_role_without_the_right_is_refused(system: System) -> None:
    assert system.ingress is not None
    body = {"payloads": [await _encrypted(system, '{"rate": "165.75"}')]}
    ops = mint_dev_token(system.settings, "Olu Ops", "ops")
    sales = mint_dev_token(system.settings, "Sam Sales", "sales_ops")
    async with httpx.AsyncClient(base_url=system.ingress.url) as http:
        allowed = await http.post("/codec/decode", json=body, headers={"Authorization": f"Bearer {ops}"})
        refused = await http.post("/codec/decode", json=body, headers={"Authorization": f"Bearer {sales}"})
        forged = await http.post(
            "/codec/decode", json=body, headers={"Authorization": f"Bearer {ops[:-4]}AAAA"}
        )
    [decoded] = allowed.json()["payloads"]
    assert allowed.status_code == 200 and base64.b64decode(decoded["data"]) == b'{"rate": "165.75"}'
    assert refused.status_code == 403 and "sales_ops" in refused.text
    assert forged.status_code == 401


async def test_the_ops_page_reads_a_persons_signed_token_as_a_basic_password(system: System) -> None:
    assert system.ingress is not None
    token = mint_dev_token(system.settings, "Fiona Finance", "finance")
    basic = base64.b64encode(f"fiona:{token}".encode()).decode()
    async with httpx.AsyncClient(base_url=system.ingress.url) as http:
        page = await http.get("/ops", headers={"Authorization": f"Basic {basic}"})
        bearer = await http.get("/ops", headers={"Authorization": f"Bearer {token}"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert bearer.status_code == 200
