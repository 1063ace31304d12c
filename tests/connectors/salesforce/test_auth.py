"""OAuth against the sandbox's token endpoint: client credentials, JWT bearer, and refresh on expiry."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.errors import AuthFailed
from connectors.salesforce import SalesforceConnector
from connectors.salesforce.client import SalesforceClient
from sandboxes.serve import ServedApp

from .conftest import CLIENT_ID, CLIENT_SECRET


def _key_pair() -> tuple[bytes, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


@pytest.fixture(scope="module")
def key_pair() -> tuple[bytes, str]:
    return _key_pair()


async def test_expired_session_is_refreshed_once_and_the_call_succeeds(sandbox_url: str) -> None:
    client = SalesforceClient(base_url=sandbox_url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    try:
        await client.create("Account", {"Name": "Before expiry"})
        async with httpx.AsyncClient(base_url=sandbox_url) as control:
            (await control.post("/_sandbox/expire-tokens")).raise_for_status()

        account_id = await client.create("Account", {"Name": "After expiry"})
    finally:
        await client.aclose()

    assert account_id.startswith("001")
    assert client.auth.token_fetches == 2


async def test_session_refused_again_after_one_refresh_raises_auth_failed(
    sandbox_factory: Callable[..., ServedApp],
) -> None:
    # Every token this org issues is already expired, so the one refresh cannot help.
    served = sandbox_factory(token_lifetime_seconds=0)
    client = SalesforceClient(base_url=served.url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    try:
        with pytest.raises(AuthFailed, match="INVALID_SESSION_ID"):
            await client.create("Account", {"Name": "Never"})
    finally:
        await client.aclose()

    assert client.auth.token_fetches == 2


async def test_wrong_client_secret_raises_auth_failed(sandbox_url: str) -> None:
    client = SalesforceClient(base_url=sandbox_url, client_id=CLIENT_ID, client_secret="wrong")
    try:
        with pytest.raises(AuthFailed, match="invalid_client"):
            await client.limits()
    finally:
        await client.aclose()


async def test_token_endpoint_accepts_client_credentials_in_basic_auth(sandbox_url: str) -> None:
    async with httpx.AsyncClient(base_url=sandbox_url) as http:
        response = await http.post(
            "/services/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(CLIENT_ID, CLIENT_SECRET),
        )

    body = response.json()
    assert response.status_code == 200
    assert body["token_type"] == "Bearer" and body["instance_url"] == sandbox_url
    assert body["access_token"].startswith("00D000000000001!")
    assert "signature" in body and "issued_at" in body


async def test_token_endpoint_refuses_an_unsupported_grant(sandbox_url: str) -> None:
    async with httpx.AsyncClient(base_url=sandbox_url) as http:
        response = await http.post("/services/oauth2/token", data={"grant_type": "password"})

    assert response.status_code == 400
    assert response.json() == {
        "error": "unsupported_grant_type",
        "error_description": "grant type not supported",
    }


async def test_jwt_bearer_flow_gets_a_session_from_a_signed_assertion(
    sandbox_factory: Callable[..., ServedApp], key_pair: tuple[bytes, str]
) -> None:
    private, public = key_pair
    served = sandbox_factory(jwt_certificate_pem=public)
    connector = SalesforceConnector(
        base_url=served.url,
        client_id=CLIENT_ID,
        client_secret="unused",
        jwt_private_key=private,
        jwt_username="integration@northwind.example",
    )
    try:
        account_id = await connector.client.create("Account", {"Name": "Via JWT"})
    finally:
        await connector.aclose()

    assert account_id.startswith("001")
    assert connector.client.auth.token_fetches == 1


async def test_jwt_signed_with_another_key_is_refused(
    sandbox_factory: Callable[..., ServedApp], key_pair: tuple[bytes, str]
) -> None:
    _, public = key_pair
    other_private, _ = _key_pair()
    served = sandbox_factory(jwt_certificate_pem=public)
    client = SalesforceClient(
        base_url=served.url,
        client_id=CLIENT_ID,
        client_secret="unused",
        jwt_private_key=other_private,
        jwt_username="integration@northwind.example",
    )
    try:
        with pytest.raises(AuthFailed, match="invalid assertion"):
            await client.limits()
    finally:
        await client.aclose()


async def test_jwt_for_a_user_who_has_not_approved_the_app_is_refused(
    sandbox_factory: Callable[..., ServedApp], key_pair: tuple[bytes, str]
) -> None:
    private, public = key_pair
    served = sandbox_factory(jwt_certificate_pem=public)
    client = SalesforceClient(
        base_url=served.url,
        client_id=CLIENT_ID,
        client_secret="unused",
        jwt_private_key=private,
        jwt_username="sam.seller@northwind.example",
    )
    try:
        with pytest.raises(AuthFailed, match="hasn't approved"):
            await client.limits()
    finally:
        await client.aclose()


async def test_jwt_with_the_wrong_audience_or_expired_is_refused(
    sandbox_factory: Callable[..., ServedApp], key_pair: tuple[bytes, str]
) -> None:
    private, public = key_pair
    served = sandbox_factory(jwt_certificate_pem=public)
    claims = {"iss": CLIENT_ID, "sub": "integration@northwind.example"}
    wrong_audience = jwt.encode(
        {**claims, "aud": "https://test.salesforce.com", "exp": int(time.time()) + 60},
        private,
        algorithm="RS256",
    )
    expired = jwt.encode(
        {**claims, "aud": "https://login.salesforce.com", "exp": int(time.time()) - 60},
        private,
        algorithm="RS256",
    )
    grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    async with httpx.AsyncClient(base_url=served.url) as http:
        audience_reply = await http.post(
            "/services/oauth2/token", data={"grant_type": grant, "assertion": wrong_audience}
        )
        expired_reply = await http.post(
            "/services/oauth2/token", data={"grant_type": grant, "assertion": expired}
        )

    assert audience_reply.status_code == expired_reply.status_code == 400
    assert audience_reply.json()["error_description"] == "audience is invalid"
    assert expired_reply.json()["error"] == "invalid_grant"


def test_jwt_needs_both_a_key_and_a_username(key_pair: tuple[bytes, str]) -> None:
    with pytest.raises(ValueError, match="both jwt_private_key and jwt_username"):
        SalesforceClient(
            base_url="http://127.0.0.1:1", client_id="c", client_secret="s", jwt_private_key=key_pair[0]
        )


async def test_rest_call_without_a_session_gets_invalid_session_id(sandbox_url: str) -> None:
    async with httpx.AsyncClient(base_url=sandbox_url) as http:
        response = await http.get("/services/data/v62.0/limits", headers={"Authorization": "Bearer forged"})

    assert response.status_code == 401
    assert response.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
