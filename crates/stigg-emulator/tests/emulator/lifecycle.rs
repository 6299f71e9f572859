//! The calls after provisioning: a subscription that replaces the active one, PATCH,
//! cancel and archive, with Stigg's answers, idempotent replays and the per-entity limit.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use stigg_emulator::{
    EmulatorConfig, RateLimit, RetryAfterHint, SubscriptionStatus, SubscriptionView,
};

use crate::support::*;

const TRIAL_END: &str = "2030-01-15T00:00:00Z";

fn at(text: &str) -> anyhow::Result<DateTime<Utc>> {
    Ok(text.parse()?)
}

/// A harness with customer `org_1` and its trialing subscription `sub_A1`.
async fn start_trialing() -> anyhow::Result<Harness> {
    start_trialing_with(EmulatorConfig::default()).await
}

async fn start_trialing_with(config: EmulatorConfig) -> anyhow::Result<Harness> {
    let h = start_with(config).await?;
    h.create_customer("org_1").await?;
    let created = h
        .post(
            "/api/v1/subscriptions",
            &trial_subscription("sub_A1", "org_1"),
        )
        .await?;
    anyhow::ensure!(created.status().as_u16() == 201, "{}", created.status());
    Ok(h)
}

/// A subscription created after a plan change or a resume: no id, started at once.
fn new_subscription(customer_id: &str, plan_id: &str) -> Value {
    json!({
        "customerId": customer_id,
        "planId": plan_id,
        "billingPeriod": "MONTHLY",
        "billingId": "sub_A1",
        "paymentCollectionMethod": "NONE",
        "scheduleStrategy": "IMMEDIATE",
        "metadata": {"orgId": customer_id, "stripeSubscriptionId": "sub_A1", "planCode": "starter"}
    })
}

impl Harness {
    fn subscription(&self, id: &str) -> anyhow::Result<SubscriptionView> {
        self.emulator()
            .subscription(id)
            .ok_or_else(|| anyhow::anyhow!("no subscription {id}"))
    }

    async fn patch(&self, id: &str, key: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        let path = format!("/api/v1/subscriptions/{id}");
        status_and_body(
            self.send_idempotent(Method::PATCH, &path, key, body)
                .await?,
        )
        .await
    }

    async fn cancel(&self, id: &str, key: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        let path = format!("/api/v1/subscriptions/{id}/cancel");
        status_and_body(self.post_idempotent(&path, key, body).await?).await
    }

    async fn archive(&self, id: &str, key: &str) -> anyhow::Result<(u16, Value)> {
        let path = format!("/api/v1/customers/{id}/archive");
        status_and_body(self.post_idempotent(&path, key, &json!({})).await?).await
    }
}

#[tokio::test]
async fn a_new_subscription_without_id_replaces_the_customers_active_one() -> TestResult {
    let h = start_trialing().await?;
    h.create_customer("org_2").await?;
    h.post(
        "/api/v1/subscriptions",
        &trial_subscription("sub_B1", "org_2"),
    )
    .await?;

    let response = h
        .post_idempotent(
            "/api/v1/subscriptions",
            "sync:sub_A1:1:plan-change",
            &new_subscription("org_1", "plan-starter"),
        )
        .await?;

    let (status, body) = status_and_body(response).await?;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["data"]["status"], "SUCCESS");
    let new_id = body["data"]["subscription"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!new_id.is_empty() && new_id != "sub_A1", "{body}");
    assert_eq!(body["data"]["id"], new_id.as_str());
    assert_eq!(body["data"]["subscription"]["planId"], "plan-starter");
    assert_eq!(body["data"]["subscription"]["billingId"], "sub_A1");

    let replaced = h.subscription("sub_A1")?;
    assert_eq!(replaced.status, SubscriptionStatus::Canceled);
    assert!(replaced.cancellation_date.is_some());
    let (_, read) = status_and_body(h.get("/api/v1/subscriptions/sub_A1").await?).await?;
    assert_eq!(read["data"]["status"], "CANCELED");
    let active = h.emulator().active_subscription("org_1");
    assert_eq!(
        active.as_ref().map(|s| s.id.as_str()),
        Some(new_id.as_str())
    );
    assert_eq!(
        active.map(|s| (s.plan_id, s.status)),
        Some(("plan-starter".to_owned(), SubscriptionStatus::Active))
    );
    // Another customer's subscription is not touched.
    assert_eq!(
        h.subscription("sub_B1")?.status,
        SubscriptionStatus::InTrial
    );
    Ok(())
}

#[tokio::test]
async fn only_the_immediate_schedule_strategy_is_emulated() -> TestResult {
    let h = start_trialing().await?;
    let mut later = new_subscription("org_1", "plan-starter");
    later["scheduleStrategy"] = json!("END_OF_BILLING_PERIOD");

    let (status, body) = status_and_body(h.post("/api/v1/subscriptions", &later).await?).await?;

    assert_eq!((status, &body["code"]), (400, &json!("BadUserInput")));
    assert_eq!(
        h.subscription("sub_A1")?.status,
        SubscriptionStatus::InTrial
    );
    Ok(())
}

#[tokio::test]
async fn an_immediate_cancel_ends_it_and_a_second_is_already_canceled() -> TestResult {
    let h = start_trialing().await?;
    let now = json!({"cancellationTime": "IMMEDIATE", "cancellationAction": "REVOKE_ENTITLEMENTS"});

    let (status, body) = h.cancel("sub_A1", "k1", &now).await?;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["id"], "sub_A1");
    assert_eq!(body["data"]["status"], "CANCELED");
    assert!(body["data"]["cancellationDate"].is_string(), "{body}");
    let canceled = h.subscription("sub_A1")?;
    assert_eq!(canceled.status, SubscriptionStatus::Canceled);
    assert_eq!(h.emulator().active_subscription("org_1"), None);

    let (status, body) = h.cancel("sub_A1", "k2", &now).await?;
    assert_eq!(status, 400);
    assert_eq!(
        body["code"], "SubscriptionAlreadyCanceledOrExpired",
        "{body}"
    );
    let trial = json!({"trialEndDate": "2030-02-01T00:00:00Z"});
    let (status, body) = h.patch("sub_A1", "k3", &trial).await?;
    assert_eq!(status, 400);
    assert_eq!(
        body["code"], "SubscriptionAlreadyCanceledOrExpired",
        "{body}"
    );
    assert_eq!(h.subscription("sub_A1")?, canceled, "unchanged");
    Ok(())
}

#[tokio::test]
async fn a_cancel_on_a_date_sets_it_and_a_patch_takes_it_back() -> TestResult {
    let h = start_trialing().await?;
    let on_date = json!({"cancellationTime": "SPECIFIC_DATE", "endDate": "2030-03-01T00:00:00Z"});

    let (status, body) = h.cancel("sub_A1", "k1", &on_date).await?;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["cancellationDate"], "2030-03-01T00:00:00.000Z");
    assert_eq!(body["data"]["status"], "IN_TRIAL");
    let cancelling = h.subscription("sub_A1")?;
    assert_eq!(
        cancelling.cancellation_date,
        Some(at("2030-03-01T00:00:00Z")?)
    );
    assert_eq!(cancelling.status, SubscriptionStatus::InTrial);

    let (status, body) = h
        .patch("sub_A1", "k2", &json!({"cancellationDate": null}))
        .await?;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["cancellationDate"], Value::Null);
    assert_eq!(h.subscription("sub_A1")?.cancellation_date, None);
    Ok(())
}

#[tokio::test]
async fn a_patch_moves_the_trial_end_of_a_trial_only() -> TestResult {
    let h = start_trialing().await?;
    assert_eq!(h.subscription("sub_A1")?.trial_end, Some(at(TRIAL_END)?));

    let (status, body) = h
        .patch(
            "sub_A1",
            "k1",
            &json!({"trialEndDate": "2030-02-01T00:00:00Z"}),
        )
        .await?;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["trialEndDate"], "2030-02-01T00:00:00.000Z");
    let patched = h.subscription("sub_A1")?;
    assert_eq!(patched.trial_end, Some(at("2030-02-01T00:00:00Z")?));
    assert_eq!(patched.plan_id, "plan-pro");

    h.post(
        "/api/v1/subscriptions",
        &new_subscription("org_1", "plan-starter"),
    )
    .await?;
    let paid = h
        .emulator()
        .active_subscription("org_1")
        .map(|s| s.id)
        .unwrap_or_default();
    let (status, body) = h
        .patch(
            &paid,
            "k2",
            &json!({"trialEndDate": "2030-02-01T00:00:00Z"}),
        )
        .await?;
    assert_eq!((status, &body["code"]), (400, &json!("BadUserInput")));
    let (status, body) = h
        .patch(&paid, "k3", &json!({"trialEndDate": "next week"}))
        .await?;
    assert_eq!((status, &body["code"]), (400, &json!("BadUserInput")));
    Ok(())
}

#[tokio::test]
async fn unknown_subscriptions_and_customers_are_404() -> TestResult {
    let h = start().await?;
    let now = json!({"cancellationTime": "IMMEDIATE"});

    let (status, body) = h.cancel("sub_nope", "k1", &now).await?;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "SubscriptionNotFound", "{body}");
    let (status, body) = h
        .patch("sub_nope", "k2", &json!({"cancellationDate": null}))
        .await?;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "SubscriptionNotFound", "{body}");
    let (status, body) = h.archive("org_nope", "k3").await?;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "CustomerNotFound", "{body}");
    assert_eq!(h.emulator().customer_archived("org_nope"), None);
    Ok(())
}

#[tokio::test]
async fn cancel_bodies_are_checked() -> TestResult {
    let h = start_trialing().await?;
    for (key, body) in [
        ("k1", json!({})),
        ("k2", json!({"cancellationTime": "SOMETIME"})),
        ("k3", json!({"cancellationTime": "SPECIFIC_DATE"})),
        ("k4", json!({"cancellationTime": "END_OF_BILLING_PERIOD"})),
        (
            "k5",
            json!({"cancellationTime": "IMMEDIATE", "cancellationAction": "LATER"}),
        ),
    ] {
        let (status, answer) = h.cancel("sub_A1", key, &body).await?;
        assert_eq!(
            (status, &answer["code"]),
            (400, &json!("BadUserInput")),
            "{body}"
        );
    }
    assert_eq!(
        h.subscription("sub_A1")?.status,
        SubscriptionStatus::InTrial
    );
    Ok(())
}

#[tokio::test]
async fn archiving_ends_the_subscriptions_hides_the_customer_and_succeeds_again() -> TestResult {
    let h = start_trialing().await?;
    assert_eq!(h.emulator().customer_archived("org_1"), Some(false));

    let (status, body) = h.archive("org_1", "archive:org_1").await?;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["id"], "org_1");
    assert!(body["data"]["archivedAt"].is_string(), "{body}");
    assert_eq!(h.emulator().customer_archived("org_1"), Some(true));
    assert_eq!(
        h.subscription("sub_A1")?.status,
        SubscriptionStatus::Canceled
    );
    let (status, body) = status_and_body(h.get("/api/v1/customers/org_1").await?).await?;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "CustomerNotFound", "{body}");
    let (status, body) = status_and_body(
        h.post(
            "/api/v1/subscriptions",
            &new_subscription("org_1", "plan-starter"),
        )
        .await?,
    )
    .await?;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "CustomerNotFound", "{body}");

    // Again, under another key so that it is not a replay; without a body, which
    // archiving does not read.
    let again = h
        .api(Method::POST, "/api/v1/customers/org_1/archive")
        .header("Idempotency-Key", "archive:org_1:again")
        .send()
        .await?;
    assert_eq!(again.status().as_u16(), 200);
    assert_eq!(h.emulator().customer_archived("org_1"), Some(true));
    Ok(())
}

#[tokio::test]
async fn lifecycle_calls_are_replayed_under_their_key_and_logged() -> TestResult {
    let h = start_trialing().await?;
    let now = json!({"cancellationTime": "IMMEDIATE"});
    let first = h.cancel("sub_A1", "sync:sub_A1:1:cancel-now", &now).await?;

    // The retry of the same move: Stigg's first answer, not "already canceled".
    let response = h
        .post_idempotent(
            "/api/v1/subscriptions/sub_A1/cancel",
            "sync:sub_A1:1:cancel-now",
            &now,
        )
        .await?;
    assert_eq!(header(&response, "idempotent-replayed"), Some("true"));
    assert_eq!(status_and_body(response).await?, first);
    let archived = h.archive("org_1", "archive:org_1").await?;
    assert_eq!(h.archive("org_1", "archive:org_1").await?, archived);

    let log: Vec<_> = h
        .emulator()
        .requests()
        .into_iter()
        .skip(2)
        .map(|r| (r.method, r.path, r.idempotency_key, r.status))
        .collect();
    let entry = |method: &str, path: &str, key: &str| {
        (
            method.to_owned(),
            path.to_owned(),
            Some(key.to_owned()),
            200,
        )
    };
    let cancel = entry(
        "POST",
        "/api/v1/subscriptions/sub_A1/cancel",
        "sync:sub_A1:1:cancel-now",
    );
    let archive = entry("POST", "/api/v1/customers/org_1/archive", "archive:org_1");
    assert_eq!(log, [cancel.clone(), cancel, archive.clone(), archive]);
    let patch = h
        .patch(
            "sub_A1",
            "sync:sub_A1:2:trial",
            &json!({"trialEndDate": TRIAL_END}),
        )
        .await?;
    assert_eq!(patch.0, 400);
    let logged = h.emulator().requests().pop().map(|r| (r.method, r.body));
    assert_eq!(
        logged,
        Some(("PATCH".to_owned(), Some(json!({"trialEndDate": TRIAL_END}))))
    );
    Ok(())
}

#[tokio::test]
async fn the_entity_limit_counts_a_subscriptions_patches_and_cancels_together() -> TestResult {
    let h = start_trialing_with(EmulatorConfig {
        rate_limit: Some(RateLimit {
            per_operation_per_minute: 0,
            per_customer_per_minute: 2,
            retry_after: RetryAfterHint::Seconds,
        }),
        ..EmulatorConfig::default()
    })
    .await?;
    let trial = |day: u32| json!({"trialEndDate": format!("2030-02-{day:02}T00:00:00Z")});
    assert_eq!(h.patch("sub_A1", "k1", &trial(1)).await?.0, 200);
    let on_date = json!({"cancellationTime": "SPECIFIC_DATE", "endDate": "2030-03-01T00:00:00Z"});
    assert_eq!(h.cancel("sub_A1", "k2", &on_date).await?.0, 200);

    let (status, body) = h.patch("sub_A1", "k3", &trial(2)).await?;

    assert_eq!(status, 429);
    assert_eq!(body["code"], "RateLimitExceeded", "{body}");
    assert_eq!(
        h.subscription("sub_A1")?.trial_end,
        Some(at("2030-02-01T00:00:00Z")?)
    );
    // The customer's own window holds its two creates (the customer, then the subscription),
    // so archiving it is refused too; another customer's window is empty.
    let (status, _) = h.archive("org_1", "k4").await?;
    assert_eq!(status, 429);
    h.create_customer("org_2").await?;
    assert_eq!(h.archive("org_2", "k5").await?.0, 200);
    Ok(())
}
