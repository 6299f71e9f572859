"""Stripe's official Python library against the Stripe emulator: every read the service makes
(subscription, customer, subscriptions list with status=all and cursor paging, events), and the
errors the library turns into its own exception types."""

from __future__ import annotations

import pytest
import stripe

from conftest import StripeEmulator

PRICE = {"id": "price_starter_m", "lookupKey": "plan_starter_m", "interval": "month"}


def create_customer(emulator: StripeEmulator, customer_id: str, **fields: object) -> dict:
    return emulator.admin("POST", "/customers", {"id": customer_id, **fields})["object"]


def create_subscription(emulator: StripeEmulator, subscription_id: str, customer: str, **fields: object) -> dict:
    body = {"id": subscription_id, "customer": customer, "price": PRICE, **fields}
    return emulator.admin("POST", "/subscriptions", body)["object"]


def test_a_subscription_reads_back_as_the_librarys_object(stripe_emulator: StripeEmulator) -> None:
    create_customer(stripe_emulator, "cus_read", email="owner@example.org", name="Read")
    create_subscription(stripe_emulator, "sub_read", "cus_read", trialEnd=4_102_444_800)

    subscription = stripe.Subscription.retrieve("sub_read")

    assert isinstance(subscription, stripe.Subscription)
    assert subscription.id == "sub_read"
    assert subscription.object == "subscription"
    assert subscription.status == "trialing"
    assert subscription.trial_end == 4_102_444_800
    assert subscription.customer == "cus_read"
    item = subscription["items"].data[0]
    assert isinstance(item, stripe.SubscriptionItem)
    assert item.price.lookup_key == "plan_starter_m"
    assert item.price.recurring.interval == "month"
    # The library asks for its own API version, one after the billing period moved to items.
    assert item.current_period_end > item.current_period_start
    assert subscription.last_response.headers["Stripe-Version"] == stripe.api_version
    assert subscription.last_response.request_id.startswith("req_")


def test_a_customer_reads_back_and_a_deleted_one_as_its_stub(stripe_emulator: StripeEmulator) -> None:
    create_customer(stripe_emulator, "cus_live", email="live@example.org", metadata={"orgId": "org_1"})
    create_customer(stripe_emulator, "cus_gone", email="gone@example.org")
    stripe_emulator.admin("DELETE", "/customers/cus_gone")

    live = stripe.Customer.retrieve("cus_live")
    assert isinstance(live, stripe.Customer)
    assert live.email == "live@example.org"
    assert live.metadata["orgId"] == "org_1"
    assert "deleted" not in live.to_dict()

    gone = stripe.Customer.retrieve("cus_gone")
    assert isinstance(gone, stripe.Customer)
    assert gone.id == "cus_gone"
    assert gone.deleted is True


def test_the_status_all_list_pages_through_every_subscription(stripe_emulator: StripeEmulator) -> None:
    create_customer(stripe_emulator, "cus_many")
    ids = [f"sub_many_{n}" for n in range(7)]
    for subscription_id in ids:
        create_subscription(stripe_emulator, subscription_id, "cus_many")
    for ended in ids[1:3]:
        stripe_emulator.admin("POST", f"/subscriptions/{ended}/cancel")

    first = stripe.Subscription.list(status="all", customer="cus_many", limit=3)
    assert len(first.data) == 3 and first.has_more
    listed = [subscription.id for subscription in first.auto_paging_iter()]

    # Newest first, every one exactly once, the canceled ones included.
    assert listed == list(reversed(ids))
    statuses = {s.id: s.status for s in stripe.Subscription.list(status="all", customer="cus_many", limit=100)}
    assert statuses[ids[1]] == statuses[ids[2]] == "canceled"
    # Without status=all, Stripe (and the emulator) leave the ended ones out.
    not_ended = [s.id for s in stripe.Subscription.list(customer="cus_many").auto_paging_iter()]
    assert set(not_ended) == set(ids) - {ids[1], ids[2]}

    # The library really paged: three requests for seven subscriptions at three a page, the
    # later two with the cursor of the page before.
    pages = [
        request["query"]
        for request in stripe_emulator.admin("GET", "/requests")
        if request["path"] == "/v1/subscriptions" and "status=all" in request["query"] and "limit=3" in request["query"]
    ]
    assert len(pages) == 3, pages
    assert "starting_after" not in pages[0]
    assert f"starting_after={ids[4]}" in pages[1] and f"starting_after={ids[1]}" in pages[2]


def test_events_list_as_the_librarys_events(stripe_emulator: StripeEmulator) -> None:
    create_customer(stripe_emulator, "cus_events")
    create_subscription(stripe_emulator, "sub_events", "cus_events")
    stripe_emulator.admin("POST", "/subscriptions/sub_events/status", {"status": "past_due"})

    events = list(stripe.Event.list(type="customer.subscription.*", limit=2).auto_paging_iter())

    assert events, "no subscription event listed"
    assert all(isinstance(event, stripe.Event) for event in events)
    assert all(event.type.startswith("customer.subscription.") for event in events)
    mine = [event for event in events if event.data.object.id == "sub_events"]
    assert [event.type for event in mine] == ["customer.subscription.updated", "customer.subscription.created"]
    updated = mine[0]
    assert updated.data.object.status == "past_due"
    assert updated.data.previous_attributes["status"] == "active"
    assert stripe.Event.retrieve(updated.id).id == updated.id


def test_an_unknown_id_is_the_librarys_resource_missing(stripe_emulator: StripeEmulator) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stripe.Subscription.retrieve("sub_missing")
    assert raised.value.http_status == 404
    assert raised.value.code == "resource_missing"
    assert raised.value.param == "id"
    assert "sub_missing" in raised.value.user_message

    with pytest.raises(stripe.InvalidRequestError) as raised:
        stripe.Customer.retrieve("cus_missing")
    assert raised.value.http_status == 404 and raised.value.code == "resource_missing"


def test_a_wrong_key_is_the_librarys_authentication_error(stripe_emulator: StripeEmulator) -> None:
    create_customer(stripe_emulator, "cus_key")
    with pytest.raises(stripe.AuthenticationError) as raised:
        stripe.Customer.retrieve("cus_key", api_key="sk_test_not_the_emulators")
    assert raised.value.http_status == 401
    assert "sk_test_" in raised.value.user_message


def test_the_client_object_reads_the_same(stripe_emulator: StripeEmulator) -> None:
    """StripeClient, the library's other entry point, with the emulator as its API base."""
    create_customer(stripe_emulator, "cus_client")
    create_subscription(stripe_emulator, "sub_client", "cus_client")
    client = stripe.StripeClient(
        stripe_emulator.api_key, base_addresses={"api": stripe_emulator.url}, max_network_retries=0
    )

    assert client.v1.subscriptions.retrieve("sub_client").status == "active"
    assert client.v1.customers.retrieve("cus_client").id == "cus_client"
    listed = [s.id for s in client.v1.subscriptions.list({"status": "all", "customer": "cus_client"}).auto_paging_iter()]
    assert listed == ["sub_client"]
    with pytest.raises(stripe.AuthenticationError):
        stripe.StripeClient("sk_test_wrong", base_addresses={"api": stripe_emulator.url}).v1.customers.retrieve(
            "cus_client"
        )
