"""Shared set-up for the vendor-client tests: where the emulators run (from the environment
that scripts/vendor_clients.sh sets), their admin routes, and the webhook receiver that the
Stripe emulator delivers to (its --webhook-url)."""

from __future__ import annotations

import http.server
import os
import threading
import time
from dataclasses import dataclass, field

import pytest
import requests
import stripe


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.exit(f"{name} is not set: run the tests through scripts/vendor_clients.sh", 2)
    return value


@dataclass
class Delivery:
    """One POST the receiver got, and what stripe.Webhook.construct_event made of it."""

    payload: bytes
    signature: str | None
    accepted: bool
    event_id: str | None
    event_type: str | None
    error: str | None


@dataclass
class Receiver:
    """The webhook endpoint: verifies each delivery with Stripe's library and `secret`,
    answers 200 when it is authentic and 400 otherwise, and keeps every delivery."""

    port: int
    secret: str
    deliveries: list[Delivery] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhook"

    def record(self, delivery: Delivery) -> None:
        with self.changed:
            self.deliveries.append(delivery)
            self.changed.notify_all()

    def wait_for(self, event_id: str, timeout: float = 15.0) -> Delivery:
        """The first delivery of `event_id` (read from the payload, whether or not the
        signature was accepted)."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for delivery in self.deliveries:
                    if delivery.event_id == event_id:
                        return delivery
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [d.event_id for d in self.deliveries]
                    raise AssertionError(f"no delivery of {event_id} within {timeout}s; got {seen}")
                self.changed.wait(left)


def make_handler(receiver: Receiver) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the name http.server calls)
            payload = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            signature = self.headers.get("Stripe-Signature")
            try:
                event = stripe.Webhook.construct_event(payload, signature, receiver.secret)
                delivery = Delivery(payload, signature, True, event.id, event.type, None)
            except stripe.SignatureVerificationError as error:
                # The id is read without trusting it, only to match the delivery in tests.
                unverified = stripe.Webhook.construct_event_without_verification(payload)
                delivery = Delivery(
                    payload, signature, False, unverified.id, unverified.type, str(error)
                )
            receiver.record(delivery)
            self.send_response(200 if delivery.accepted else 400)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    return Handler


@pytest.fixture(scope="session", autouse=True)
def receiver() -> Receiver:
    """Listens from the start of the session, so that no delivery finds the port closed."""
    secrets = env("VC_WEBHOOK_SECRETS").split(",")
    receiver = Receiver(port=int(env("VC_WEBHOOK_PORT")), secret=secrets[0])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", receiver.port), make_handler(receiver))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()


@dataclass
class StripeEmulator:
    url: str
    api_key: str
    secrets: list[str]

    def admin(self, method: str, path: str, body: dict | None = None) -> dict:
        """An /_emulator admin call; fails the test on an error answer."""
        response = requests.request(method, f"{self.url}/_emulator{path}", json=body, timeout=10)
        assert response.ok, f"{method} /_emulator{path}: {response.status_code} {response.text}"
        return response.json()


@pytest.fixture(scope="session")
def stripe_emulator() -> StripeEmulator:
    emulator = StripeEmulator(
        url=env("VC_STRIPE_URL"),
        api_key=env("VC_STRIPE_KEY"),
        secrets=env("VC_WEBHOOK_SECRETS").split(","),
    )
    # The library's module-wide settings, as an integration sets them: the emulator's base
    # and key, no retries (an unexpected 5xx must fail, not be retried into a pass).
    stripe.api_base = emulator.url
    stripe.api_key = emulator.api_key
    stripe.max_network_retries = 0
    return emulator


@dataclass
class StiggEmulator:
    url: str
    api_key: str

    def requests_log(self) -> list[dict]:
        response = requests.get(f"{self.url}/_emulator/requests", timeout=10)
        response.raise_for_status()
        return response.json()


@pytest.fixture(scope="session")
def stigg_emulator() -> StiggEmulator:
    return StiggEmulator(url=env("VC_STIGG_URL"), api_key=env("VC_STIGG_KEY"))


@pytest.fixture(scope="session")
def verify_signature() -> str:
    """The path of the adapters-stripe example `verify_signature`."""
    return env("VC_VERIFY_SIGNATURE")
