"""Stigg's official Python SDK (`stigg` on PyPI, generated from Stigg's OpenAPI document) against
the Stigg emulator, with strict response validation: every answer is parsed into the SDK's
pydantic models, so a field of the wrong type, a missing required field or a value outside an
enum fails the test; and a field the document does not describe fails it too, unless listed in
UNDOCUMENTED with its reason. The calls are the ones crates/adapters-stigg makes (client.rs,
lifecycle.rs; bodies as wire.rs writes them), and the errors the service reads."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pydantic
import pytest
import requests
import stigg
from stigg.types.v1 import CustomerResponse, Subscription, SubscriptionProvisionResponse

from conftest import StiggEmulator

TRIAL_END = "2030-01-15T00:00:00Z"
CANCEL_ON = "2030-02-01T00:00:00Z"


@pytest.fixture(scope="module")
def client(stigg_emulator: StiggEmulator) -> stigg.Stigg:
    # No retries: the SDK retries 409 and 5xx by default, which would hide an answer.
    return stigg.Stigg(
        api_key=stigg_emulator.api_key,
        base_url=stigg_emulator.url,
        max_retries=0,
        _strict_response_validation=True,
    )


# Fields the emulator answers that Stigg's document (so the SDK's models) does not describe.
# Strict validation lets unknown fields through; this list keeps them deliberate. Stigg's
# subscription has no billingPeriod; the emulator tells it so that the adapter's comparison of
# it (checks.rs, "only compared when Stigg tells it") is exercised.
UNDOCUMENTED = {"data.billingPeriod", "data.subscription.billingPeriod"}


def undocumented(model: pydantic.BaseModel, path: str = "") -> set[str]:
    """The dotted paths of the fields in an answer that its model does not declare."""
    found = {path + name for name in model.model_extra or {}}
    for name in type(model).model_fields:
        value = getattr(model, name)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, pydantic.BaseModel):
                found |= undocumented(item, f"{path}{name}.")
    return found


def checked(answer):
    """`answer`, once its fields are all in Stigg's document (but the known few)."""
    extra = undocumented(answer) - UNDOCUMENTED
    assert not extra, f"fields Stigg's document does not have: {sorted(extra)}"
    return answer


def key() -> dict:
    """The adapter sends an Idempotency-Key on every mutation; so do these calls."""
    return {"extra_headers": {"Idempotency-Key": str(uuid.uuid4())}}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def last_body(emulator: StiggEmulator, method: str, path: str) -> dict:
    """The JSON body of the latest `method path` the emulator received."""
    matching = [r for r in emulator.requests_log() if r["method"] == method and r["path"] == path]
    assert matching, f"no {method} {path} reached the emulator"
    return matching[-1]["body"]


def provision_customer(client: stigg.Stigg, org: str) -> CustomerResponse:
    # As CustomerRequest in wire.rs: id, name, email, billingId, metadata of strings.
    return checked(client.v1.customers.provision(
        id=org,
        name="Acme",
        email="owner@example.org",
        billing_id=f"cus_{org}",
        metadata={"orgId": org, "stripeCustomerId": f"cus_{org}", "tenantId": "tenant_1"},
        **key(),
    ))


def provision_subscription(client: stigg.Stigg, org: str, subscription_id: str | None, **extra) -> SubscriptionProvisionResponse:
    # As SubscriptionRequest in wire.rs: our id for a provisioning, none for a creation.
    fields = {"id": subscription_id} if subscription_id else {}
    return checked(client.v1.subscriptions.provision(
        **fields,
        customer_id=org,
        plan_id="plan-starter",
        billing_period="MONTHLY",
        billing_id=subscription_id or "sub_stripe_created",
        payment_collection_method="NONE",
        metadata={"orgId": org, "stripeSubscriptionId": subscription_id or "sub_stripe_created", "planCode": "plan_starter_m"},
        **extra,
        **key(),
    ))


def test_provisioning_a_customer_and_reading_it(client: stigg.Stigg, stigg_emulator: StiggEmulator) -> None:
    created = provision_customer(client, "org_sdk_1")
    assert isinstance(created, CustomerResponse)
    assert created.data.id == "org_sdk_1"
    assert created.data.billing_id == "cus_org_sdk_1"
    assert created.data.archived_at is None
    assert created.data.metadata == {"orgId": "org_sdk_1", "stripeCustomerId": "cus_org_sdk_1", "tenantId": "tenant_1"}
    assert last_body(stigg_emulator, "POST", "/api/v1/customers")["billingId"] == "cus_org_sdk_1"

    read = checked(client.v1.customers.retrieve("org_sdk_1"))
    assert read.data.id == "org_sdk_1" and read.data.email == "owner@example.org"
    assert read.data.created_at.tzinfo is not None

    # A second provisioning is Stigg's 409, which the service takes as "already there".
    with pytest.raises(stigg.ConflictError) as raised:
        provision_customer(client, "org_sdk_1")
    assert raised.value.status_code == 409
    assert raised.value.body["code"] == "DuplicatedEntityNotAllowed"


def test_provisioning_a_subscription_with_our_id_and_a_trial(client: stigg.Stigg) -> None:
    provision_customer(client, "org_sdk_2")
    provisioned = provision_subscription(
        client,
        "org_sdk_2",
        "sub_sdk_2",
        trial_override_configuration={"is_trial": True, "trial_end_date": TRIAL_END, "trial_end_behavior": "CONVERT_TO_PAID"},
    )
    assert isinstance(provisioned, SubscriptionProvisionResponse)
    assert provisioned.data.status == "SUCCESS"
    assert provisioned.data.id == "sub_sdk_2"
    subscription = provisioned.data.subscription
    assert subscription is not None
    assert (subscription.id, subscription.customer_id, subscription.plan_id) == ("sub_sdk_2", "org_sdk_2", "plan-starter")
    assert subscription.status == "IN_TRIAL"
    assert subscription.trial_end_date == at(TRIAL_END)
    assert subscription.payment_collection_method == "NONE"

    read = checked(client.v1.subscriptions.retrieve("sub_sdk_2"))
    assert isinstance(read, Subscription)
    assert read.data.status == "IN_TRIAL" and read.data.trial_end_date == at(TRIAL_END)
    assert read.data.trial is not None and read.data.trial.trial_end_behavior == "CONVERT_TO_PAID"

    with pytest.raises(stigg.ConflictError):
        provision_subscription(client, "org_sdk_2", "sub_sdk_2")


def test_the_lifecycle_calls(client: stigg.Stigg, stigg_emulator: StiggEmulator) -> None:
    provision_customer(client, "org_sdk_3")
    provision_subscription(
        client,
        "org_sdk_3",
        "sub_sdk_3",
        trial_override_configuration={"is_trial": True, "trial_end_date": TRIAL_END, "trial_end_behavior": "CONVERT_TO_PAID"},
    )

    # PATCH {"trialEndDate"}: the trial moved.
    moved = checked(client.v1.subscriptions.update("sub_sdk_3", trial_end_date="2030-01-20T00:00:00Z", **key()))
    assert isinstance(moved, Subscription)
    assert moved.data.trial_end_date == at("2030-01-20T00:00:00Z")
    assert last_body(stigg_emulator, "PATCH", "/api/v1/subscriptions/sub_sdk_3") == {"trialEndDate": "2030-01-20T00:00:00Z"}

    # POST .../cancel SPECIFIC_DATE with endDate: a cancellation scheduled.
    scheduled = checked(
        client.v1.subscriptions.cancel("sub_sdk_3", cancellation_time="SPECIFIC_DATE", end_date=CANCEL_ON, **key())
    )
    assert scheduled.data.cancellation_date == at(CANCEL_ON)
    assert scheduled.data.status != "CANCELED"

    # PATCH {"cancellationDate": null}: taken back.
    kept = checked(client.v1.subscriptions.update("sub_sdk_3", cancellation_date=None, **key()))
    assert kept.data.cancellation_date is None
    assert last_body(stigg_emulator, "PATCH", "/api/v1/subscriptions/sub_sdk_3") == {"cancellationDate": None}

    # POST /subscriptions without an id, IMMEDIATE: Stigg names it, and the old one ends.
    created = provision_subscription(client, "org_sdk_3", None, schedule_strategy="IMMEDIATE")
    assert created.data.status == "SUCCESS"
    new_id = created.data.id
    assert new_id and new_id != "sub_sdk_3"
    assert created.data.subscription is not None and created.data.subscription.id == new_id
    assert "id" not in last_body(stigg_emulator, "POST", "/api/v1/subscriptions")
    assert checked(client.v1.subscriptions.retrieve("sub_sdk_3")).data.status == "CANCELED"

    # POST .../cancel IMMEDIATE, with each cancellationAction the service sends.
    ended = checked(
        client.v1.subscriptions.cancel(
            new_id, cancellation_time="IMMEDIATE", cancellation_action="REVOKE_ENTITLEMENTS", **key()
        )
    )
    assert ended.data.status == "CANCELED" and ended.data.cancellation_date is not None
    assert last_body(stigg_emulator, "POST", f"/api/v1/subscriptions/{new_id}/cancel") == {
        "cancellationTime": "IMMEDIATE",
        "cancellationAction": "REVOKE_ENTITLEMENTS",
    }
    again = provision_subscription(client, "org_sdk_3", None, schedule_strategy="IMMEDIATE")
    assert again.data.id is not None
    ended = checked(
        client.v1.subscriptions.cancel(again.data.id, cancellation_time="IMMEDIATE", cancellation_action="DEFAULT", **key())
    )
    assert ended.data.status == "CANCELED"

    # POST /customers/{id}/archive: archived, hidden from reads.
    archived = checked(client.v1.customers.archive("org_sdk_3", **key()))
    assert isinstance(archived, CustomerResponse)
    assert archived.data.id == "org_sdk_3" and archived.data.archived_at is not None
    assert archived.data.archived_at <= datetime.now(timezone.utc)
    with pytest.raises(stigg.NotFoundError) as raised:
        client.v1.customers.retrieve("org_sdk_3")
    assert raised.value.body["code"] == "CustomerNotFound"


def test_the_errors_the_service_reads(client: stigg.Stigg) -> None:
    with pytest.raises(stigg.NotFoundError) as raised:
        client.v1.subscriptions.update("sub_nowhere", trial_end_date=TRIAL_END, **key())
    assert raised.value.status_code == 404
    assert raised.value.body["code"] == "SubscriptionNotFound"

    with pytest.raises(stigg.NotFoundError) as raised:
        client.v1.subscriptions.cancel("sub_nowhere", cancellation_time="IMMEDIATE", **key())
    assert raised.value.body["code"] == "SubscriptionNotFound"

    with pytest.raises(stigg.NotFoundError) as raised:
        client.v1.subscriptions.retrieve("sub_nowhere")
    assert raised.value.body["code"] == "SubscriptionNotFound"

    provision_customer(client, "org_sdk_4")
    provision_subscription(client, "org_sdk_4", "sub_sdk_4")
    client.v1.subscriptions.cancel("sub_sdk_4", cancellation_time="IMMEDIATE", cancellation_action="DEFAULT", **key())
    with pytest.raises(stigg.BadRequestError) as raised:
        client.v1.subscriptions.cancel("sub_sdk_4", cancellation_time="IMMEDIATE", cancellation_action="DEFAULT", **key())
    assert raised.value.status_code == 400
    assert raised.value.body["code"] == "SubscriptionAlreadyCanceledOrExpired"

    with pytest.raises(stigg.AuthenticationError) as raised:
        client.with_options(api_key="not-the-emulators").v1.customers.retrieve("org_sdk_4")
    assert raised.value.body["code"] == "Unauthenticated"


def test_strict_validation_refuses_an_answer_off_the_schema(client: stigg.Stigg, stigg_emulator: StiggEmulator) -> None:
    """The check above has teeth: a 200 whose subscription has a status outside Stigg's enum
    (scripted through the emulator's faults) fails strict validation, where the SDK's default,
    lenient parsing would have let it through."""
    assert client._strict_response_validation
    provision_customer(client, "org_sdk_5")
    provision_subscription(client, "org_sdk_5", "sub_sdk_5")
    raw = requests.get(
        f"{stigg_emulator.url}/api/v1/subscriptions/sub_sdk_5",
        headers={"X-API-KEY": stigg_emulator.api_key},
        timeout=10,
    ).json()
    bad = {"data": {**raw["data"], "status": "HALF_ACTIVE"}}
    fault = {
        "method": "GET",
        "pathPrefix": "/api/v1/subscriptions/sub_sdk_5",
        "times": 2,
        "action": {"type": "status", "status": 200, "body": bad},
    }
    response = requests.post(f"{stigg_emulator.url}/_emulator/faults", json=fault, timeout=10)
    assert response.status_code == 201, response.text

    with pytest.raises(stigg.APIResponseValidationError):
        client.v1.subscriptions.retrieve("sub_sdk_5")
    lenient = stigg.Stigg(api_key=stigg_emulator.api_key, base_url=stigg_emulator.url, max_retries=0)
    assert lenient.v1.subscriptions.retrieve("sub_sdk_5").data.status == "HALF_ACTIVE"

    # And the check for fields outside the document finds a made-up one.
    made_up = Subscription.model_validate({"data": {**raw["data"], "madeUpField": 1}})
    assert undocumented(made_up) == {"data.billingPeriod", "data.madeUpField"}
