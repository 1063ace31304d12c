"""Who the caller is: signed person tokens, static development tokens, and how the approval endpoints use the
identity and map what Temporal answers (no Temporal server here: the client is a stand-in)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient
from jwt.utils import base64url_encode
from pydantic import SecretStr
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from canonical import Money
from config import Settings
from ingress.app import create_app
from ingress.identity import Identity, TokenRefused, mint_dev_token, verify_token
from runs.time_to_billing import ApprovalDecision, ApprovalRecorded, PendingApproval, PendingLine

SETTINGS = Settings(environment="test")
PRODUCTION = SETTINGS.model_copy(
    update={"environment": "production", "api_tokens": SecretStr("shared-secret:finance")}
)


def secret(settings: Settings) -> str:
    assert settings.jwt_secret is not None
    return settings.jwt_secret.get_secret_value()


def pem(private_key: Any) -> str:
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def claims(**changes: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "sub": "u-123",
        "name": "Fiona Finance",
        "role": "finance",
        "exp": now + timedelta(minutes=5),
        **changes,
    }


# --- verification ---------------------------------------------------------------------------------------


def test_a_dev_token_names_the_person_and_role() -> None:
    token = mint_dev_token(SETTINGS, "Fiona Finance", "finance", subject="u-123")
    identity = verify_token(SETTINGS, token)
    assert identity == Identity(subject="u-123", name="Fiona Finance", role="finance")
    assert identity.actor == "Fiona Finance <u-123>"


def test_an_expired_token_is_refused() -> None:
    token = mint_dev_token(SETTINGS, "Fiona", "finance", now=datetime.now(UTC) - timedelta(hours=9))
    with pytest.raises(TokenRefused, match="expired"):
        verify_token(SETTINGS, token)


def test_a_token_signed_with_another_key_is_refused() -> None:
    token = jwt.encode(claims(), "someone-elses-secret-of-sufficient-length", algorithm="HS256")
    with pytest.raises(TokenRefused, match="signature"):
        verify_token(SETTINGS, token)


@pytest.mark.parametrize("missing", ["sub", "name", "role", "exp"])
def test_a_token_without_a_required_claim_is_refused(missing: str) -> None:
    body = claims()
    del body[missing]
    token = jwt.encode(body, secret(SETTINGS), algorithm="HS256")
    with pytest.raises(TokenRefused, match=missing):
        verify_token(SETTINGS, token)


def test_a_token_with_an_unknown_role_is_refused() -> None:
    token = jwt.encode(claims(role="admin"), secret(SETTINGS), algorithm="HS256")
    with pytest.raises(TokenRefused, match="unknown role"):
        verify_token(SETTINGS, token)


def test_an_unsigned_token_is_refused() -> None:
    token = jwt.encode(claims(), None, algorithm="none")
    with pytest.raises(TokenRefused, match="'none'"):
        verify_token(SETTINGS, token)


@pytest.mark.parametrize(
    ("private_key", "algorithm"),
    [
        (rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"),
        (ec.generate_private_key(ec.SECP256R1()), "ES256"),
    ],
)
def test_identity_provider_tokens_verify_against_the_public_key_issuer_and_audience(
    private_key: Any, algorithm: str
) -> None:
    settings = PRODUCTION.model_copy(
        update={
            "jwt_secret": None,
            "jwt_public_key": pem(private_key),
            "jwt_issuer": "https://id.northwind.example",
            "jwt_audience": "ps-sync",
        }
    )
    good = claims(iss="https://id.northwind.example", aud="ps-sync")
    identity = verify_token(settings, jwt.encode(good, private_key, algorithm=algorithm))
    assert identity.name == "Fiona Finance" and identity.role == "finance"

    for wrong, message in (
        ({**good, "iss": "https://evil.example"}, "issued by"),
        ({**good, "aud": "another-app"}, "audience"),
        ({key: value for key, value in good.items() if key != "iss"}, "iss"),
    ):
        with pytest.raises(TokenRefused, match=message):
            verify_token(settings, jwt.encode(wrong, private_key, algorithm=algorithm))
    with pytest.raises(TokenRefused, match="HS256"):
        verify_token(settings, jwt.encode(good, "a-guessed-shared-secret-of-some-length", algorithm="HS256"))


def test_the_public_key_is_never_accepted_as_an_hmac_secret() -> None:
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = pem(private_key)
    settings = SETTINGS.model_copy(update={"jwt_secret": None, "jwt_public_key": public_pem})
    # PyJWT will not sign with a PEM as an HMAC secret; an attacker holding the public key would by hand.
    header = base64url_encode(b'{"alg":"HS256","typ":"JWT"}')
    payload = base64url_encode(json.dumps({**claims(), "exp": int(time.time()) + 300}).encode())
    signature = hmac.new(public_pem.encode(), header + b"." + payload, hashlib.sha256).digest()
    token = b".".join((header, payload, base64url_encode(signature))).decode()
    with pytest.raises(TokenRefused, match="HS256"):
        verify_token(settings, token)


def test_static_tokens_name_a_development_identity_outside_production() -> None:
    identity = verify_token(SETTINGS, "dev-finance-token")
    assert identity.role == "finance" and identity.name == "dev finance token" and not identity.personal
    with pytest.raises(TokenRefused, match="unknown"):
        verify_token(SETTINGS, "forged")


def test_static_tokens_are_refused_in_production() -> None:
    with pytest.raises(TokenRefused, match="production"):
        verify_token(PRODUCTION, "shared-secret")


def test_identity_provider_tokens_need_issuer_and_audience_configured_in_production() -> None:
    private_key = ec.generate_private_key(ec.SECP256R1())
    settings = PRODUCTION.model_copy(update={"jwt_public_key": pem(private_key)})
    with pytest.raises(TokenRefused, match="ISSUER"):
        verify_token(settings, jwt.encode(claims(), private_key, algorithm="ES256"))


def test_dev_tokens_are_never_minted_in_production() -> None:
    with pytest.raises(RuntimeError, match="production"):
        mint_dev_token(PRODUCTION, "Fiona", "finance")


def test_the_development_jwt_secret_is_refused_in_production() -> None:
    with pytest.raises(ValueError, match="jwt_secret"):
        Settings(
            environment="production",
            salesforce_client_secret="s",
            salesforce_outbound_token="s",
            kantata_client_secret="s",
            xero_client_secret="s",
            xero_webhook_key="s",
            tryton_password="s",
            api_tokens="",
            codec_keys="k:ZGV2LW9ubHkta2V5LWRvLW5vdC11c2UtaW4tcHJvZCE=",
        )


# --- the endpoints, on a stand-in Temporal client ---------------------------------------------------------


PENDING = PendingApproval(
    workflow_id="time-to-billing:P1:2026-10",
    project_id="P1",
    period="2026-10",
    customer="Umbrella Ltd",
    legal_entity="UK",
    version="v3",
    total=Money.of("6000.00", "GBP"),
    lines=(
        PendingLine(
            kind="time",
            description="Consulting",
            quantity="40",
            unit_amount=Money.of("150", "GBP"),
            amount=Money.of("6000.00", "GBP"),
        ),
    ),
    reason="total above the UK approval threshold",
    asked_at=datetime(2026, 11, 2, 9, tzinfo=UTC),
    remind_at=datetime(2026, 11, 4, 9, tzinfo=UTC),
    escalate_at=datetime(2026, 11, 9, 9, tzinfo=UTC),
)


@dataclass
class Handle:
    id: str
    temporal: StandIn

    async def execute_update(self, name: str, arg: ApprovalDecision, **_: Any) -> ApprovalRecorded:
        self.temporal.updates.append((name, arg))
        if self.temporal.update_error is not None:
            raise self.temporal.update_error
        return ApprovalRecorded(
            decision="approved", stage="posting", decided_by=arg.approver, invoice_version="v3"
        )

    async def query(self, name: str, **_: Any) -> PendingApproval | None:
        return self.temporal.pending

    async def describe(self) -> Any:
        raise RPCError("not found", RPCStatusCode.NOT_FOUND, b"")


@dataclass
class StandIn:
    update_error: BaseException | None = None
    pending: PendingApproval | None = None
    updates: list[tuple[str, ApprovalDecision]] = field(default_factory=list)

    def get_workflow_handle(self, workflow_id: str, **_: Any) -> Handle:
        return Handle(workflow_id, self)


@pytest.fixture
def temporal() -> StandIn:
    return StandIn()


@pytest.fixture
def api(temporal: StandIn, tmp_path: Path) -> Iterator[TestClient]:
    settings = SETTINGS.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'ledger.sqlite'}"})
    with TestClient(create_app(settings, client=temporal)) as client:  # type: ignore[arg-type]
        yield client


def bearer(name: str = "Fiona Finance", role: str = "finance") -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_dev_token(SETTINGS, name, role, subject='u-123')}"}


DECISION = {"invoice_version": "v3", "expected_total": {"amount": "6000.00", "currency": "GBP"}}


def test_approve_without_a_token_is_401_and_with_an_expired_one_too(api: TestClient) -> None:
    assert api.post("/billing-runs/P1/2026-10/approve", json=DECISION).status_code == 401
    expired = mint_dev_token(SETTINGS, "Fiona", "finance", now=datetime.now(UTC) - timedelta(days=1))
    response = api.post(
        "/billing-runs/P1/2026-10/approve", json=DECISION, headers={"Authorization": f"Bearer {expired}"}
    )
    assert response.status_code == 401 and "expired" in response.text
    assert response.headers["www-authenticate"] == "Bearer"


def test_approve_by_a_person_of_another_role_is_403(api: TestClient, temporal: StandIn) -> None:
    response = api.post("/billing-runs/P1/2026-10/approve", json=DECISION, headers=bearer(role="pmo"))
    assert response.status_code == 403 and "finance" in response.text
    assert temporal.updates == []


@pytest.mark.parametrize("field_name", ["approver", "actor"])
def test_a_body_naming_the_approver_is_refused_saying_it_comes_from_the_token(
    api: TestClient, temporal: StandIn, field_name: str
) -> None:
    response = api.post(
        "/billing-runs/P1/2026-10/approve", json={**DECISION, field_name: "someone.else"}, headers=bearer()
    )
    assert response.status_code == 422
    problem = response.json()["problems"][0]
    assert problem["field"] == field_name and "token" in problem["message"]
    assert temporal.updates == []


def test_write_off_with_an_actor_in_the_body_is_refused(api: TestClient) -> None:
    response = api.post(
        "/invoices/xero/inv-1/write-off",
        json={"actor": "x", "reason": "bankrupt", "expected_due": {"amount": "10.00", "currency": "GBP"}},
        headers=bearer(),
    )
    assert response.status_code == 422 and response.json()["problems"][0]["field"] == "actor"


def test_a_float_total_is_refused(api: TestClient) -> None:
    body = {"invoice_version": "v3", "expected_total": {"amount": 6000.0, "currency": "GBP"}}
    response = api.post("/billing-runs/P1/2026-10/approve", json=body, headers=bearer())
    assert response.status_code == 422 and response.json()["problems"][0]["field"] == "expected_total.amount"


def test_approval_sends_the_update_with_the_verified_person_and_what_they_saw(
    api: TestClient, temporal: StandIn
) -> None:
    response = api.post("/billing-runs/P1/2026-10/approve", json=DECISION, headers=bearer())

    assert response.status_code == 200, response.text
    assert response.json() == {
        "workflow_id": "time-to-billing:P1:2026-10",
        "decision": "approved",
        "stage": "posting",
        "decided_by": "Fiona Finance <u-123>",
        "invoice_version": "v3",
    }
    [(update, decision)] = temporal.updates
    assert update == "approve_invoice"
    assert decision == ApprovalDecision(
        approver="Fiona Finance <u-123>",
        invoice_version="v3",
        expected_total=Money(amount=Decimal("6000.00"), currency="GBP"),
    )


def test_reject_sends_the_reject_update_with_the_reason(api: TestClient, temporal: StandIn) -> None:
    assert api.post("/billing-runs/P1/2026-10/reject", json=DECISION, headers=bearer()).status_code == 422
    response = api.post(
        "/billing-runs/P1/2026-10/reject", json={**DECISION, "reason": "wrong PO"}, headers=bearer()
    )
    assert response.status_code == 200
    assert [(name, d.reason) for name, d in temporal.updates] == [("reject_invoice", "wrong PO")]


def test_a_decision_the_run_refuses_is_409_with_its_message_and_what_waits_now(
    api: TestClient, temporal: StandIn
) -> None:
    temporal.update_error = WorkflowUpdateFailedError(
        ApplicationError("the waiting invoice is version v4, not v3", type="ValueError")
    )
    temporal.pending = PENDING.model_copy(update={"version": "v4"})

    response = api.post("/billing-runs/P1/2026-10/approve", json=DECISION, headers=bearer())

    assert response.status_code == 409
    body = response.json()
    assert body["detail"] == "the waiting invoice is version v4, not v3"
    assert body["workflow_id"] == "time-to-billing:P1:2026-10"
    assert body["pending"]["version"] == "v4" and body["pending"]["total"] == {
        "amount": "6000.00",
        "currency": "GBP",
    }


def test_a_run_that_does_not_exist_is_404(api: TestClient, temporal: StandIn) -> None:
    temporal.update_error = RPCError("workflow not found", RPCStatusCode.NOT_FOUND, b"")
    response = api.post("/billing-runs/P1/2026-10/approve", json=DECISION, headers=bearer())
    assert response.status_code == 404 and "time-to-billing:P1:2026-10" in response.text


def test_temporal_unavailable_is_503(api: TestClient, temporal: StandIn) -> None:
    temporal.update_error = RPCError("tcp connect error", RPCStatusCode.UNAVAILABLE, b"")
    response = api.post("/billing-runs/P1/2026-10/approve", json=DECISION, headers=bearer())
    assert response.status_code == 503 and "unavailable" in response.text


def test_the_approval_queue_needs_the_finance_role(api: TestClient) -> None:
    assert api.get("/approvals").status_code == 401
    assert api.get("/approvals", headers=bearer(role="ops")).status_code == 403


def test_exception_endpoints_accept_person_tokens(api: TestClient) -> None:
    # Verified like any other token: a person whose role may not read the queue is told so.
    response = api.get("/exceptions/1", headers=bearer(role="sales_ops"))
    assert response.status_code == 403 and "sales_ops" in response.text
