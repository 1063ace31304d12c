"""Both of NetSuite's authentication schemes, checked for real by the sandbox: TBA signatures (RFC 5849 with
HMAC-SHA256 and the account realm) and OAuth 2.0 client credentials (a JWT verified with the mapped
certificate's public key)."""

from __future__ import annotations

import base64
import json

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from connectors.errors import AuthFailed
from connectors.netsuite import tba as connector_tba
from connectors.netsuite.oauth2 import ClientCredentialsAuth, algorithm_for
from sandboxes.netsuite import tba as sandbox_tba
from sandboxes.netsuite.control import NetSuiteSandboxControl

from .conftest import CERTIFICATE_ID, NetSuiteSandboxHandle, connector_for, oauth2_auth, public_pem, tba_auth

# RFC 5849 section 3.4.1.1's worked example (query, form body and oauth parameters).
RFC_URL = "http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b"
RFC_OAUTH = [
    ("oauth_consumer_key", "9djdj82h48djs9d2"),
    ("oauth_token", "kkk9d7dh3k39sjv7"),
    ("oauth_signature_method", "HMAC-SHA1"),
    ("oauth_timestamp", "137131201"),
    ("oauth_nonce", "7d8f3e4a"),
]
RFC_BODY = [("c2", ""), ("a3", "2 q")]
RFC_BASE_STRING = (
    "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26c%2540"
    "%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3D"
    "HMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7"
)


def test_the_connectors_signature_base_string_is_rfc_5849s_worked_example() -> None:
    oauth = [*RFC_BODY, *RFC_OAUTH, ("realm", "Example")]
    assert connector_tba.base_string("POST", RFC_URL, oauth) == RFC_BASE_STRING


def test_the_sandbox_rebuilds_the_same_base_string_from_the_request_as_it_arrived() -> None:
    oauth = {**dict(RFC_OAUTH), **dict(RFC_BODY), "realm": "Example", "oauth_signature": "ignored"}
    query = RFC_URL.split("?", 1)[1]
    assert (
        sandbox_tba.signature_base("POST", "http", "example.com", "/request", query, oauth) == RFC_BASE_STRING
    )


def test_base_uri_keeps_a_non_default_port_and_drops_the_default_one() -> None:
    assert connector_tba.base_uri("HTTPS://Acct.Example.com:443/a/b?x=1") == "https://acct.example.com/a/b"
    assert connector_tba.base_uri("http://127.0.0.1:8704/services") == "http://127.0.0.1:8704/services"


def test_the_realm_is_the_account_id_in_upper_case_with_an_underscore() -> None:
    assert connector_tba.realm_of("1234567-sb1") == "1234567_SB1"
    header = connector_tba.TokenBasedAuth(
        account_id="1234567-sb1", consumer_key="ck", consumer_secret="cs", token_id="t", token_secret="ts"
    ).authorization(
        "GET", "https://1234567-sb1.suitetalk.api.netsuite.com/services/rest/record/v1/customer/1"
    )
    assert header.startswith('OAuth realm="1234567_SB1", oauth_consumer_key="ck", oauth_token="t"')
    assert 'oauth_signature_method="HMAC-SHA256"' in header and 'oauth_version="1.0"' in header


async def _stats(sandbox: NetSuiteSandboxHandle) -> dict[str, object]:
    control = NetSuiteSandboxControl(sandbox.url)
    try:
        return await control.stats()
    finally:
        await control.aclose()


async def test_a_tba_signed_call_is_accepted(netsuite_sandbox: NetSuiteSandboxHandle) -> None:
    connector = connector_for(netsuite_sandbox, tba_auth(netsuite_sandbox))
    try:
        data = await connector.reference_data()
    finally:
        await connector.aclose()
    assert data.base_currency == "USD"


@pytest.mark.parametrize(
    "change",
    [
        {"token_secret": "not-the-token-secret"},
        {"consumer_secret": "not-the-consumer-secret"},
        {"account_id": "7654321"},
        {"token_id": "revoked-token"},
    ],
    ids=["token secret", "consumer secret", "realm", "token"],
)
async def test_a_tba_call_signed_with_wrong_credentials_is_refused_as_auth_failed(
    netsuite_sandbox: NetSuiteSandboxHandle, change: dict[str, str]
) -> None:
    connector = connector_for(netsuite_sandbox, tba_auth(netsuite_sandbox, **change))
    try:
        with pytest.raises(AuthFailed, match="INVALID_LOGIN"):
            await connector.reference_data()
    finally:
        await connector.aclose()


async def test_a_replayed_tba_nonce_is_refused(netsuite_sandbox: NetSuiteSandboxHandle) -> None:
    auth = tba_auth(netsuite_sandbox)
    auth._nonce = lambda: "replayed-nonce-0001"  # the same nonce twice: the second request is a replay
    connector = connector_for(netsuite_sandbox, auth)
    try:
        await connector.client.get_record("subsidiary", "1")
        with pytest.raises(AuthFailed):
            await connector.client.get_record("subsidiary", "1")
    finally:
        await connector.aclose()
    assert "nonce already used" in (await _stats(netsuite_sandbox))["auth_refused"]  # type: ignore[operator]


async def test_a_stale_tba_timestamp_is_refused(netsuite_sandbox: NetSuiteSandboxHandle) -> None:
    auth = tba_auth(netsuite_sandbox)
    auth._clock = lambda: 1_000_000_000.0  # 2001
    connector = connector_for(netsuite_sandbox, auth)
    try:
        with pytest.raises(AuthFailed):
            await connector.client.get_record("subsidiary", "1")
    finally:
        await connector.aclose()


def _claims(assertion: str) -> tuple[dict[str, object], dict[str, object]]:
    header, payload, _ = assertion.split(".")
    pad = lambda part: part + "=" * (-len(part) % 4)  # noqa: E731
    return json.loads(base64.urlsafe_b64decode(pad(header))), json.loads(
        base64.urlsafe_b64decode(pad(payload))
    )


def test_the_client_assertion_carries_what_netsuite_requires(
    netsuite_sandbox: NetSuiteSandboxHandle, rsa_key: rsa.RSAPrivateKey
) -> None:
    auth = oauth2_auth(netsuite_sandbox, rsa_key)
    header, payload = _claims(auth.assertion())
    assert header == {"typ": "JWT", "alg": "PS256", "kid": CERTIFICATE_ID}
    assert payload["iss"] == netsuite_sandbox.config.client_id
    assert payload["aud"] == auth.token_url and auth.token_url.endswith("/services/rest/auth/oauth2/v1/token")
    assert payload["scope"] == ["rest_webservices"]
    assert 0 < int(payload["exp"]) - int(payload["iat"]) < 3600  # type: ignore[call-overload]


def test_ec_keys_sign_with_the_ecdsa_algorithm_of_their_curve() -> None:
    assert algorithm_for(ec.generate_private_key(ec.SECP256R1())) == "ES256"
    assert algorithm_for(ec.generate_private_key(ec.SECP384R1())) == "ES384"
    with pytest.raises(ValueError, match="P-256"):
        algorithm_for(ec.generate_private_key(ec.SECP256K1()))


async def test_one_token_serves_many_calls_and_an_expired_one_is_replaced_once(
    netsuite_sandbox: NetSuiteSandboxHandle, rsa_key: rsa.RSAPrivateKey, control: NetSuiteSandboxControl
) -> None:
    auth = oauth2_auth(netsuite_sandbox, rsa_key)
    connector = connector_for(netsuite_sandbox, auth)
    try:
        for _ in range(3):
            await connector.client.get_record("subsidiary", "1")
        assert auth.token_fetches == 1
        await control.expire_tokens()
        await connector.client.get_record("subsidiary", "1")
        assert auth.token_fetches == 2
    finally:
        await connector.aclose()


async def test_an_ec_certificate_mapped_to_the_integration_works_too(
    netsuite_sandbox: NetSuiteSandboxHandle, control: NetSuiteSandboxControl
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    await control.map_certificate("ec-certificate", public_pem(key))
    connector = connector_for(
        netsuite_sandbox, oauth2_auth(netsuite_sandbox, key, certificate_id="ec-certificate")
    )
    try:
        assert (await connector.client.get_record("subsidiary", "1"))["id"] == "1"
    finally:
        await connector.aclose()


async def test_an_assertion_signed_by_another_key_is_refused(netsuite_sandbox: NetSuiteSandboxHandle) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    connector = connector_for(netsuite_sandbox, oauth2_auth(netsuite_sandbox, stranger))
    try:
        with pytest.raises(AuthFailed, match="client assertion"):
            await connector.client.get_record("subsidiary", "1")
    finally:
        await connector.aclose()


async def test_a_revoked_certificate_or_another_client_id_is_refused(
    netsuite_sandbox: NetSuiteSandboxHandle, rsa_key: rsa.RSAPrivateKey, control: NetSuiteSandboxControl
) -> None:
    other_client = connector_for(
        netsuite_sandbox, oauth2_auth(netsuite_sandbox, rsa_key, client_id="someone-else")
    )
    try:
        with pytest.raises(AuthFailed):
            await other_client.client.get_record("subsidiary", "1")
    finally:
        await other_client.aclose()
    await control.revoke_certificate(CERTIFICATE_ID)
    revoked = connector_for(netsuite_sandbox, oauth2_auth(netsuite_sandbox, rsa_key))
    try:
        with pytest.raises(AuthFailed):
            await revoked.client.get_record("subsidiary", "1")
    finally:
        await revoked.aclose()


async def test_rs256_assertions_are_refused_as_netsuite_no_longer_takes_them(
    netsuite_sandbox: NetSuiteSandboxHandle, rsa_key: rsa.RSAPrivateKey
) -> None:
    auth: ClientCredentialsAuth = oauth2_auth(netsuite_sandbox, rsa_key)
    _, payload = _claims(auth.assertion())
    assertion = jwt.encode(payload, rsa_key, algorithm="RS256", headers={"kid": CERTIFICATE_ID})
    async with httpx.AsyncClient() as http:
        response = await http.post(
            auth.token_url,
            data={
                "grant_type": "client_credentials",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion,
            },
        )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_a_call_without_credentials_gets_netsuites_invalid_login_body(
    netsuite_sandbox: NetSuiteSandboxHandle,
) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{netsuite_sandbox.url}/services/rest/record/v1/customer/1")
    assert response.status_code == 401
    body = response.json()
    assert body["status"] == 401
    assert body["o:errorDetails"][0]["o:errorCode"] == "INVALID_LOGIN"
