//! Deliveries: signed as Stripe signs, retried as Stripe retries, and faulted on demand.

use std::net::TcpListener;
use std::time::Duration;

use onboarding_adapters_stripe::{SignatureError, WebhookSecrets, verify};
use serde_json::json;
use stripe_emulator::{
    DeliveryFault, DeliveryFaultAction, DeliveryOutcome, EmulatorConfig, NewSubscription,
    RetryPolicy, SubscriptionChange, SubscriptionStatus,
};

use crate::support::{
    Received, Receiver, SECRET, endpoint, now, price, quick_retries, start, start_with, string,
};

type TestResult = anyhow::Result<()>;

const TOLERANCE: Duration = Duration::from_secs(300);

fn verified(received: &Received, secrets: &str) -> Result<i64, SignatureError> {
    let secrets = WebhookSecrets::parse(secrets).expect("a secret");
    verify(
        received.signature.as_deref(),
        &received.body,
        &secrets,
        now(),
        TOLERANCE,
    )
}

fn status(status: SubscriptionStatus) -> SubscriptionChange {
    SubscriptionChange::Status { status }
}

#[tokio::test]
async fn deliveries_are_signed_so_that_the_services_verifier_accepts_them() -> TestResult {
    let h = start().await?;
    let customer = h.customer()?;
    h.subscription(&customer)?;
    let received = h.receiver.wait_for(2).await?;
    h.settle().await?;

    let recorded = h.emulator().events();
    for (delivery, event) in received.iter().zip(&recorded) {
        assert!(verified(delivery, SECRET).is_ok_and(|t| (t - now()).abs() < 5));
        assert_eq!(
            verified(delivery, "whsec_other"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            delivery.content_type.as_deref(),
            Some("application/json; charset=utf-8")
        );
        assert_eq!(&delivery.event(), event);
    }
    let log = h.emulator().deliveries();
    let outcomes: Vec<_> = log
        .iter()
        .map(|r| (r.attempt, r.outcome, r.status, r.will_retry))
        .collect();
    assert_eq!(
        outcomes,
        [(1, DeliveryOutcome::Delivered, Some(200), false); 2]
    );
    // The same log over HTTP.
    let over_http = h
        .admin(reqwest::Method::GET, "/deliveries", serde_json::Value::Null)
        .await?;
    assert_eq!(over_http.body[0]["eventId"], recorded[0]["id"]);
    assert_eq!(over_http.body[0]["outcome"], "delivered");
    Ok(())
}

#[tokio::test]
async fn every_secret_of_a_rotation_signs() -> TestResult {
    let receiver = Receiver::start().await?;
    let h = start_with(EmulatorConfig {
        webhook: Some(endpoint(&receiver.url, "whsec_old,whsec_new")?),
        ..EmulatorConfig::default()
    })
    .await?;
    h.customer()?;
    let delivery = &receiver.wait_for(1).await?[0];
    assert_eq!(
        delivery
            .signature
            .as_deref()
            .map(|s| s.matches("v1=").count()),
        Some(2)
    );
    assert!(verified(delivery, "whsec_old").is_ok());
    assert!(verified(delivery, "whsec_new").is_ok());
    Ok(())
}

#[tokio::test]
async fn a_failed_delivery_is_retried_until_answered_2xx_while_later_events_go_ahead() -> TestResult
{
    let h = start().await?;
    let customer = h.customer()?;
    h.receiver.wait_for(1).await?;
    h.receiver.answer_with(&[500, 503]);
    // Two events at once: created, and trial_will_end for a trial ending tomorrow.
    let mut new = NewSubscription::new(&customer, price("price_pro_m", "plan_pro_m"));
    new.trial_end = Some(now() + 86_400);
    let change = h.emulator().create_subscription(new)?;
    let created = string(&change.events[0]["id"])?;
    let notice = string(&change.events[1]["id"])?;
    h.receiver.wait_for(5).await?;
    h.settle().await?;

    // The notice's first attempt went out before the failed one's retry was due.
    let order: Vec<String> = h.receiver.received()[1..]
        .iter()
        .map(Received::event_id)
        .collect();
    assert_eq!(order, [created.as_str(), &notice, &created, &notice]);
    let tries = |id: &str| -> Vec<_> {
        h.emulator()
            .deliveries()
            .into_iter()
            .filter(|r| r.event_id == id)
            .map(|r| (r.attempt, r.status, r.will_retry))
            .collect()
    };
    assert_eq!(
        tries(&created),
        [(1, Some(500), true), (2, Some(200), false)]
    );
    assert_eq!(
        tries(&notice),
        [(1, Some(503), true), (2, Some(200), false)]
    );
    Ok(())
}

#[tokio::test]
async fn retries_stop_at_the_attempt_limit_and_the_event_lists_as_undelivered() -> TestResult {
    let h = start_with(EmulatorConfig {
        retry: RetryPolicy {
            max_attempts: 3,
            ..quick_retries()
        },
        ..EmulatorConfig::default()
    })
    .await?;
    h.receiver.answer_with(&[500; 5]);
    let customer = h.customer()?;
    h.receiver.wait_for(3).await?;
    h.settle().await?;
    let log = h.emulator().deliveries();
    let tries: Vec<_> = log
        .iter()
        .map(|r| (r.attempt, r.outcome, r.will_retry))
        .collect();
    use DeliveryOutcome::Failed;
    assert_eq!(
        tries,
        [(1, Failed, true), (2, Failed, true), (3, Failed, false)]
    );
    assert_eq!(h.receiver.received().len(), 3);

    h.subscription(&customer)?;
    h.receiver.wait_for(5).await?;
    h.settle().await?;
    let undelivered = h.get("/v1/events?delivery_success=false").await?;
    assert_eq!(undelivered.body["data"][0]["type"], "customer.created");
    assert_eq!(undelivered.body["data"].as_array().map(Vec::len), Some(1));
    let delivered = h.get("/v1/events?delivery_success=true").await?;
    assert_eq!(
        delivered.body["data"][0]["type"],
        "customer.subscription.created"
    );
    Ok(())
}

#[tokio::test]
async fn an_unreachable_endpoint_is_retried_and_the_endpoint_can_be_replaced_meanwhile()
-> TestResult {
    // A port that was free a moment ago: nothing listens there.
    let closed = format!(
        "http://{}/hook",
        TcpListener::bind("127.0.0.1:0")?.local_addr()?
    );
    let receiver = Receiver::start().await?;
    let h = start_with(EmulatorConfig {
        webhook: Some(endpoint(&closed, SECRET)?),
        retry: RetryPolicy {
            base_delay: Duration::from_millis(300),
            ..RetryPolicy::default()
        },
        ..EmulatorConfig::default()
    })
    .await?;
    h.customer()?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while h.emulator().deliveries().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no attempt logged");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    h.running
        .set_webhook(Some(endpoint(&receiver.url, SECRET)?));
    let delivery = &receiver.wait_for(1).await?[0];
    assert!(verified(delivery, SECRET).is_ok());
    // The attempt is logged once its answer is read, just after the receiver saw it.
    h.settle().await?;
    let log = h.emulator().deliveries();
    assert_eq!(
        (log[0].outcome, log[0].status, log[0].will_retry),
        (DeliveryOutcome::Unreachable, None, true)
    );
    let error = log[0].error.as_deref().unwrap_or_default();
    assert!(error.to_lowercase().contains("refused"), "{error}");
    assert_eq!(
        (log[1].attempt, log[1].outcome),
        (2, DeliveryOutcome::Delivered)
    );
    Ok(())
}

#[tokio::test]
async fn events_from_before_an_endpoint_was_set_are_not_delivered() -> TestResult {
    let receiver = Receiver::start().await?;
    let h = start_with(EmulatorConfig::default()).await?;
    h.emulator().set_webhook(None);
    let customer = h.customer()?;
    let before = h.emulator().events();
    assert_eq!(before[0]["pending_webhooks"], 0);
    h.emulator()
        .set_webhook(Some(endpoint(&receiver.url, SECRET)?));
    h.subscription(&customer)?;
    h.settle().await?;
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].event()["type"], "customer.subscription.created");
    assert_eq!(received[0].event()["pending_webhooks"], 1);
    Ok(())
}

#[tokio::test]
async fn the_endpoint_is_set_over_http_and_its_secret_never_shown() -> TestResult {
    let h = start_with(EmulatorConfig::default()).await?;
    let put = |body| h.admin(reqwest::Method::PUT, "/webhook", body);
    let set = put(json!({"url": h.receiver.url, "secret": "whsec_over_http"})).await?;
    assert_eq!(set.body, json!({"url": h.receiver.url, "secrets": 1}));
    assert!(!set.body.to_string().contains("whsec"));
    assert_eq!(
        put(json!({"url": "ftp://x/y", "secret": "whsec_a"}))
            .await?
            .status,
        400
    );
    assert_eq!(
        put(json!({"url": h.receiver.url, "secret": ""}))
            .await?
            .status,
        400
    );

    h.customer()?;
    let delivery = &h.receiver.wait_for(1).await?[0];
    assert!(verified(delivery, "whsec_over_http").is_ok());
    let events = h
        .admin(reqwest::Method::GET, "/events", serde_json::Value::Null)
        .await?;
    assert_eq!(events.body, json!(h.emulator().events()));

    let removed = h
        .admin(reqwest::Method::DELETE, "/webhook", serde_json::Value::Null)
        .await?;
    assert_eq!(removed.body, json!({"url": null, "secrets": 0}));
    assert_eq!(h.emulator().webhook_url(), None);
    Ok(())
}

#[tokio::test]
async fn a_dropped_delivery_never_arrives_but_the_event_stays_listed() -> TestResult {
    let h = start().await?;
    let customer = h.customer()?;
    let subscription = h.subscription(&customer)?;
    h.receiver.wait_for(2).await?;
    let pushed = h
        .admin_post(
            "/faults/delivery",
            json!({"eventType": "customer.subscription.updated", "action": "drop"}),
        )
        .await?;
    assert_eq!(pushed.body["delivery"][0]["action"], "drop");
    let dropped = h
        .emulator()
        .change_subscription(&subscription, status(SubscriptionStatus::PastDue))?;
    let kept = h
        .emulator()
        .change_subscription(&subscription, status(SubscriptionStatus::Active))?;
    h.receiver.wait_for(3).await?;
    h.settle().await?;

    let ids: Vec<String> = h
        .receiver
        .received()
        .iter()
        .map(Received::event_id)
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[2], string(&kept.events[0]["id"])?);
    let dropped_id = string(&dropped.events[0]["id"])?;
    let record = h
        .emulator()
        .deliveries()
        .into_iter()
        .find(|r| r.event_id == dropped_id);
    assert_eq!(record.map(|r| r.outcome), Some(DeliveryOutcome::Dropped));
    assert_eq!(
        h.get(&format!("/v1/events/{dropped_id}")).await?.status,
        200
    );
    Ok(())
}

#[tokio::test]
async fn a_doubled_delivery_arrives_twice_with_one_event_id() -> TestResult {
    let h = start().await?;
    h.emulator()
        .push_delivery_fault(DeliveryFault::new(DeliveryFaultAction::Twice));
    let customer = h.customer()?;
    h.subscription(&customer)?;
    let received = h.receiver.wait_for(3).await?;
    h.settle().await?;
    let ids: Vec<String> = received.iter().map(Received::event_id).collect();
    assert_eq!(ids[0], ids[1]);
    assert_ne!(ids[1], ids[2]);
    assert_eq!(h.receiver.received().len(), 3);
    Ok(())
}

#[tokio::test]
async fn an_out_of_order_delivery_arrives_after_the_next_event() -> TestResult {
    let h = start().await?;
    let customer = h.customer()?;
    let subscription = h.subscription(&customer)?;
    h.receiver.wait_for(2).await?;
    h.emulator()
        .push_delivery_fault(DeliveryFault::new(DeliveryFaultAction::OutOfOrder));
    let canceled = h
        .emulator()
        .change_subscription(&subscription, status(SubscriptionStatus::PastDue))?;
    h.settle().await?;
    // Held back: nothing more arrives until the next event.
    assert_eq!(h.receiver.received().len(), 2);
    let later = h
        .emulator()
        .change_subscription(&subscription, status(SubscriptionStatus::Unpaid))?;
    let received = h.receiver.wait_for(4).await?;
    let ids: Vec<String> = received[2..].iter().map(Received::event_id).collect();
    assert_eq!(
        ids,
        [
            string(&later.events[0]["id"])?,
            string(&canceled.events[0]["id"])?
        ]
    );
    // The late one still carries its own moment's object.
    assert_eq!(received[3].event()["data"]["object"]["status"], "past_due");
    Ok(())
}

#[tokio::test]
async fn reset_forgets_objects_events_deliveries_and_faults_but_keeps_the_endpoint() -> TestResult {
    let h = start().await?;
    let customer = h.customer()?;
    h.settle().await?;
    h.emulator()
        .push_delivery_fault(DeliveryFault::new(DeliveryFaultAction::Drop));
    let reset = h.admin_post("/reset", serde_json::Value::Null).await?;
    assert_eq!(reset.body, json!({"reset": true}));
    assert!(h.emulator().events().is_empty() && h.emulator().deliveries().is_empty());
    assert_eq!(h.emulator().pending_faults(), (vec![], vec![]));
    assert_eq!(
        h.get(&format!("/v1/customers/{customer}")).await?.status,
        404
    );
    h.customer()?;
    h.receiver.wait_for(2).await?;
    Ok(())
}
