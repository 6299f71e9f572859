"""Webhook signatures, both ways:

(a) what the Stripe emulator signs and delivers, Stripe's library accepts
    (stripe.Webhook.construct_event in the receiver), and refuses under a wrong secret;
(b) what Stripe's library signs, our verifier accepts (the adapters-stripe example
    `verify_signature`, which calls the crate's public `verify`), and refuses when tampered.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import stripe

from conftest import Receiver, StripeEmulator

PRICE = {"id": "price_pro_m", "lookupKey": "plan_pro_m"}


def change_event(emulator: StripeEmulator, subscription_id: str, change: str, body: dict) -> dict:
    """Applies an admin change; answers the customer.subscription.updated event it recorded
    (a change may record others beside it)."""
    events = emulator.admin("POST", f"/subscriptions/{subscription_id}/{change}", body)["events"]
    updated = [event for event in events if event["type"] == "customer.subscription.updated"]
    assert len(updated) == 1, [event["type"] for event in events]
    return updated[0]


def delivery_log(emulator: StripeEmulator, event_id: str) -> list[dict]:
    return [record for record in emulator.admin("GET", "/deliveries") if record["eventId"] == event_id]


def wait_for_log(emulator: StripeEmulator, event_id: str, timeout: float = 10.0) -> dict:
    """The emulator's record of the first attempt of `event_id`, once it is made."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if records := delivery_log(emulator, event_id):
            return records[0]
        time.sleep(0.05)
    raise AssertionError(f"the emulator logged no delivery of {event_id}")


@pytest.fixture(scope="module")
def subscription(stripe_emulator: StripeEmulator) -> str:
    stripe_emulator.admin("POST", "/customers", {"id": "cus_hooks"})
    stripe_emulator.admin(
        "POST",
        "/subscriptions",
        {"id": "sub_hooks", "customer": "cus_hooks", "price": PRICE, "trialEnd": 4_102_444_800},
    )
    return "sub_hooks"


def test_the_library_accepts_the_emulators_deliveries_and_refuses_a_wrong_secret(
    stripe_emulator: StripeEmulator, receiver: Receiver, subscription: str
) -> None:
    event = change_event(stripe_emulator, subscription, "trial-end", {"trialEnd": "now"})

    delivery = receiver.wait_for(event["id"])
    assert delivery.accepted, delivery.error
    assert delivery.event_type == "customer.subscription.updated"
    assert wait_for_log(stripe_emulator, event["id"])["outcome"] == "delivered"
    verified = stripe.Webhook.construct_event(delivery.payload, delivery.signature, stripe_emulator.secrets[0])
    assert isinstance(verified, stripe.Event)
    assert verified.data.object.id == subscription and verified.data.object.status == "active"
    assert verified.data.previous_attributes["status"] == "trialing"
    # The emulator signs once per secret (a rotation), and the library takes any of them.
    assert delivery.signature.count("v1=") == len(stripe_emulator.secrets)
    for secret in stripe_emulator.secrets:
        assert stripe.Webhook.construct_event(delivery.payload, delivery.signature, secret).id == event["id"]
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(delivery.payload, delivery.signature, "whsec_not_the_endpoints")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(delivery.payload + b" ", delivery.signature, stripe_emulator.secrets[0])

    # The receiver configured with another secret: the library refuses the delivery, the
    # receiver answers 400, and the emulator records the failed attempt.
    receiver.secret = "whsec_not_the_endpoints"
    try:
        refused = change_event(stripe_emulator, subscription, "status", {"status": "past_due"})
        delivery = receiver.wait_for(refused["id"])
        assert not delivery.accepted
        assert "No signatures found matching the expected signature" in (delivery.error or "")
        record = wait_for_log(stripe_emulator, refused["id"])
        assert record["outcome"] == "failed" and record["status"] == 400, record
    finally:
        receiver.secret = stripe_emulator.secrets[0]


def verify(binary: str, body: bytes, header: str | None, secrets: str, tolerance: int | None = None):
    command = [binary, "--secret", secrets]
    if header is not None:
        command += ["--header", header]
    if tolerance is not None:
        command += ["--tolerance-secs", str(tolerance)]
    return subprocess.run(command, input=body, capture_output=True, timeout=30)


def stripe_sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """Stripe's own signing code: WebhookSignature.generate_signature_header, public in the
    pinned library ("useful for signing payloads in unit tests")."""
    return stripe.WebhookSignature.generate_signature_header(body.decode("utf-8"), secret, timestamp=timestamp)


def test_our_verifier_accepts_what_the_library_signs(
    stripe_emulator: StripeEmulator, verify_signature: str, subscription: str
) -> None:
    # A real event, as the emulator renders it, and a body with non-ASCII text: Stripe signs
    # the UTF-8 text, our verifier the raw bytes, which must agree.
    event = change_event(stripe_emulator, subscription, "cancel-at-period-end", {"cancelAtPeriodEnd": True})
    bodies = [
        json.dumps(event).encode("utf-8"),
        json.dumps({"id": "evt_utf8", "object": "event", "note": "Zürich — 東京 ✓"}, ensure_ascii=False).encode(),
    ]
    secret, other = stripe_emulator.secrets[0], "whsec_second_of_a_rotation"
    for body in bodies:
        header = stripe_sign(body, secret)
        accepted = verify(verify_signature, body, header, secret)
        assert accepted.returncode == 0, accepted.stderr.decode()

        # Signed with the second secret of a rotation: accepted when configured.
        rotated = verify(verify_signature, body, stripe_sign(body, other), f"{secret},{other}")
        assert rotated.returncode == 0, rotated.stderr.decode()
        # The library's own check agrees with ours on the same header.
        assert stripe.WebhookSignature.verify_header(body, header, secret, tolerance=300)


def test_our_verifier_refuses_what_the_library_would_refuse(
    verify_signature: str, stripe_emulator: StripeEmulator
) -> None:
    secret = stripe_emulator.secrets[0]
    body = b'{"id": "evt_tamper", "object": "event", "type": "customer.subscription.updated"}'
    header = stripe_sign(body, secret)

    cases = {
        "a tampered body": (body.replace(b"updated", b"deleted"), header, secret, None),
        "a wrong secret": (body, header, "whsec_not_the_endpoints", None),
        "an old timestamp": (body, stripe_sign(body, secret, int(time.time()) - 3600), secret, 300),
        "no header": (body, None, secret, None),
        "no v1 signature": (body, header.split(",")[0], secret, None),
    }
    reasons = {
        "a tampered body": "no v1 signature matches",
        "a wrong secret": "no v1 signature matches",
        "an old timestamp": "away from now (tolerance 300 s)",
        "no header": "header is missing",
        "no v1 signature": "has no v1 signature",
    }
    for name, (payload, signed, secrets, tolerance) in cases.items():
        refused = verify(verify_signature, payload, signed, secrets, tolerance)
        assert refused.returncode == 1, f"{name}: accepted"
        assert reasons[name] in refused.stderr.decode(), f"{name}: {refused.stderr.decode()}"
        with pytest.raises(stripe.SignatureVerificationError):
            stripe.WebhookSignature.verify_header(payload, signed, secrets.split(",")[0], tolerance=300)

    # A wider tolerance accepts the old timestamp, as the library's does.
    old = stripe_sign(body, secret, int(time.time()) - 3600)
    assert verify(verify_signature, body, old, secret, tolerance=7200).returncode == 0
    assert stripe.WebhookSignature.verify_header(body, old, secret, tolerance=7200)
