//! The admin changes: each one records the events Stripe would, carrying the object as it was
//! at that moment.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{now, start, string, types};

type TestResult = anyhow::Result<()>;

/// Creates a customer and a trialing subscription through the admin routes; the subscription.
async fn trialing(h: &crate::support::Harness, trial_days: i64) -> anyhow::Result<Value> {
    let customer = h
        .admin_post("/customers", json!({"email": "owner@example.org"}))
        .await?;
    assert_eq!(customer.status, 201);
    let created = h
        .admin_post(
            "/subscriptions",
            json!({
                "customer": customer.body["object"]["id"],
                "price": {"id": "price_pro_m", "lookupKey": "plan_pro_m"},
                "trialEnd": now() + trial_days * 86_400,
            }),
        )
        .await?;
    assert_eq!(created.status, 201, "{}", created.body);
    Ok(created.body)
}

#[tokio::test]
async fn creations_record_created_events_with_the_new_objects() -> TestResult {
    let h = start().await?;
    let created = trialing(&h, 14).await?;
    assert_eq!(
        types(created["events"].as_array().unwrap()),
        ["customer.subscription.created"]
    );
    let event = &created["events"][0];
    assert_eq!(event["data"]["object"], created["object"]);
    assert!(string(&event["id"])?.starts_with("evt_"));
    assert_eq!(
        (&event["object"], &event["livemode"]),
        (&json!("event"), &json!(false))
    );
    assert_eq!(event["api_version"], h.emulator().api_version());
    assert!(
        event["created"]
            .as_i64()
            .is_some_and(|at| (at - now()).abs() < 5)
    );
    assert_eq!(
        types(&h.emulator().events()),
        ["customer.created", "customer.subscription.created"]
    );

    // A trial ending within three days is announced at once.
    let soon = trialing(&h, 2).await?;
    assert_eq!(
        types(soon["events"].as_array().unwrap()),
        [
            "customer.subscription.created",
            "customer.subscription.trial_will_end"
        ]
    );
    Ok(())
}

/// One change through `POST /_emulator/subscriptions/{id}/{change}`: the answer's object and
/// event types, after checking each event carries that object.
async fn change(
    h: &crate::support::Harness,
    id: &str,
    name: &str,
    body: Value,
) -> anyhow::Result<(Value, Vec<String>, Vec<Value>)> {
    let answer = h
        .admin_post(&format!("/subscriptions/{id}/{name}"), body)
        .await?;
    assert_eq!(answer.status, 200, "{name}: {}", answer.body);
    let events = answer.body["events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for event in &events {
        assert_eq!(event["data"]["object"], answer.body["object"], "{name}");
    }
    Ok((answer.body["object"].clone(), types(&events), events))
}

#[tokio::test]
async fn each_subscription_change_records_stripes_events() -> TestResult {
    let h = start().await?;
    let created = trialing(&h, 14).await?;
    let id = string(&created["object"]["id"])?;
    let later = now() + 30 * 86_400;

    let (object, kinds, events) = change(&h, &id, "trial-end", json!({"trialEnd": later})).await?;
    assert_eq!(
        (object["trial_end"].as_i64(), kinds.as_slice()),
        (
            Some(later),
            ["customer.subscription.updated".to_owned()].as_slice()
        )
    );
    assert_eq!(
        events[0]["data"]["previous_attributes"]["trial_end"],
        created["object"]["trial_end"]
    );
    assert_eq!(object["items"]["data"][0]["current_period_end"], later);

    let (object, kinds, _) = change(&h, &id, "trial-end", json!({"trialEnd": "now"})).await?;
    assert_eq!(object["status"], "active");
    assert_eq!(
        kinds,
        [
            "customer.subscription.updated",
            "customer.subscription.trial_will_end"
        ]
    );

    let (object, _, events) = change(&h, &id, "status", json!({"status": "past_due"})).await?;
    assert_eq!(object["status"], "past_due");
    assert_eq!(events[0]["data"]["previous_attributes"]["status"], "active");

    let (object, _, _) = change(
        &h,
        &id,
        "cancel-at-period-end",
        json!({"cancelAtPeriodEnd": true}),
    )
    .await?;
    assert_eq!(object["cancel_at_period_end"], true);
    assert_eq!(
        object["cancel_at"],
        object["items"]["data"][0]["current_period_end"]
    );
    assert!(object["canceled_at"].is_i64());
    let (object, _, events) = change(
        &h,
        &id,
        "cancel-at-period-end",
        json!({"cancelAtPeriodEnd": false}),
    )
    .await?;
    assert_eq!(
        (&object["cancel_at"], &object["canceled_at"]),
        (&Value::Null, &Value::Null)
    );
    assert_eq!(
        events[0]["data"]["previous_attributes"]["cancel_at_period_end"],
        true
    );

    let (object, _, _) = change(&h, &id, "cancel-at", json!({"cancelAt": later})).await?;
    assert_eq!(
        (
            object["cancel_at"].as_i64(),
            &object["cancel_at_period_end"]
        ),
        (Some(later), &json!(false))
    );
    let (object, _, _) = change(&h, &id, "cancel-at", json!({"cancelAt": null})).await?;
    assert_eq!(object["cancel_at"], Value::Null);

    let (object, _, events) = change(
        &h,
        &id,
        "price",
        json!({"price": {"id": "price_biz_y", "lookupKey": "plan_biz_y", "interval": "year"}}),
    )
    .await?;
    let price = &object["items"]["data"][0]["price"];
    assert_eq!(
        (&price["id"], &price["recurring"]["interval"]),
        (&json!("price_biz_y"), &json!("year"))
    );
    assert_eq!(
        events[0]["data"]["previous_attributes"]["items"]["data"][0]["price"]["id"],
        "price_pro_m"
    );

    let (object, kinds, _) = change(&h, &id, "pause", Value::Null).await?;
    assert_eq!(
        (object["status"].as_str(), kinds.as_slice()),
        (
            Some("paused"),
            [
                "customer.subscription.updated".to_owned(),
                "customer.subscription.paused".to_owned()
            ]
            .as_slice()
        )
    );
    let (object, kinds, _) = change(&h, &id, "resume", Value::Null).await?;
    assert_eq!(object["status"], "active");
    assert_eq!(
        kinds,
        [
            "customer.subscription.updated",
            "customer.subscription.resumed"
        ]
    );

    let (object, kinds, _) = change(&h, &id, "cancel", Value::Null).await?;
    assert_eq!(object["status"], "canceled");
    assert!(object["ended_at"].is_i64() && object["canceled_at"].is_i64());
    assert_eq!(kinds, ["customer.subscription.deleted"]);
    // Canceled is final, and still readable.
    assert_eq!(
        h.admin_post(&format!("/subscriptions/{id}/resume"), Value::Null)
            .await?
            .status,
        400
    );
    assert_eq!(
        h.get(&format!("/v1/subscriptions/{id}")).await?.body["status"],
        "canceled"
    );

    // Each event kept the object of its moment.
    let statuses: Vec<String> = h
        .emulator()
        .events()
        .iter()
        .skip(2)
        .map(|e| {
            e["data"]["object"]["status"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(statuses.first().map(String::as_str), Some("trialing"));
    assert!(statuses.contains(&"past_due".to_owned()) && statuses.contains(&"paused".to_owned()));
    Ok(())
}

#[tokio::test]
async fn a_change_to_nothing_new_records_nothing() -> TestResult {
    let h = start().await?;
    let created = trialing(&h, 14).await?;
    let id = string(&created["object"]["id"])?;
    let (_, kinds, _) = change(
        &h,
        &id,
        "cancel-at-period-end",
        json!({"cancelAtPeriodEnd": false}),
    )
    .await?;
    assert!(kinds.is_empty());
    Ok(())
}

#[tokio::test]
async fn deleting_a_subscription_cancels_then_forgets_it() -> TestResult {
    let h = start().await?;
    let created = trialing(&h, 14).await?;
    let id = string(&created["object"]["id"])?;
    let deleted = h
        .admin(Method::DELETE, &format!("/subscriptions/{id}"), Value::Null)
        .await?;
    assert_eq!(deleted.status, 200);
    assert_eq!(
        types(deleted.body["events"].as_array().unwrap()),
        ["customer.subscription.deleted"]
    );
    assert_eq!(deleted.body["object"]["status"], "canceled");
    assert_eq!(h.get(&format!("/v1/subscriptions/{id}")).await?.status, 404);
    assert_eq!(h.emulator().subscription(&id), None);
    assert_eq!(
        h.admin(Method::DELETE, &format!("/subscriptions/{id}"), Value::Null)
            .await?
            .status,
        404
    );
    Ok(())
}

#[tokio::test]
async fn deleting_a_customer_cancels_its_live_subscriptions_first() -> TestResult {
    let h = start().await?;
    let customer = h.customer()?;
    let live = h.subscription(&customer)?;
    let ended = h.subscription(&customer)?;
    h.emulator()
        .change_subscription(&ended, stripe_emulator::SubscriptionChange::Cancel)?;
    let deleted = h
        .admin(
            Method::DELETE,
            &format!("/customers/{customer}"),
            Value::Null,
        )
        .await?;
    assert_eq!(deleted.status, 200);
    assert_eq!(
        deleted.body["object"],
        json!({"id": customer, "object": "customer", "deleted": true})
    );
    let events = deleted.body["events"].as_array().unwrap();
    assert_eq!(
        types(events),
        ["customer.subscription.deleted", "customer.deleted"]
    );
    assert_eq!(events[0]["data"]["object"]["id"], json!(live));
    // The event carries the customer as it was, not the stub.
    assert_eq!(events[1]["data"]["object"]["email"], "owner@example.org");
    assert_eq!(
        h.get(&format!("/v1/subscriptions/{live}")).await?.body["status"],
        "canceled"
    );
    let stub = Some(deleted.body["object"].clone());
    assert_eq!(h.emulator().customer(&customer), stub);
    let again = h
        .admin(
            Method::DELETE,
            &format!("/customers/{customer}"),
            Value::Null,
        )
        .await?;
    assert_eq!(again.status, 404);
    Ok(())
}

#[tokio::test]
async fn refused_changes_say_why_and_record_nothing() -> TestResult {
    let h = start().await?;
    let created = trialing(&h, 14).await?;
    let id = string(&created["object"]["id"])?;
    let customer = created["object"]["customer"].clone();
    let recorded = h.emulator().events().len();
    let cases = [
        (
            format!("/subscriptions/{id}/trial-end"),
            json!({"trialEnd": now() - 10}),
            400,
        ),
        (
            format!("/subscriptions/{id}/cancel-at"),
            json!({"cancelAt": 5}),
            400,
        ),
        (format!("/subscriptions/{id}/teleport"), Value::Null, 400),
        (
            format!("/subscriptions/{id}/status"),
            json!({"status": "sleeping"}),
            400,
        ),
        (format!("/subscriptions/{id}/resume"), Value::Null, 400),
        ("/subscriptions/sub_nope/pause".to_owned(), Value::Null, 404),
        (
            "/subscriptions".to_owned(),
            json!({"customer": "cus_nope", "price": {"id": "price_1"}}),
            404,
        ),
        (
            "/subscriptions".to_owned(),
            json!({"id": id, "customer": customer, "price": {"id": "price_1"}}),
            409,
        ),
        ("/customers".to_owned(), json!({"colour": "blue"}), 400),
    ];
    for (path, body, status) in cases {
        let answer = h.admin_post(&path, body).await?;
        assert_eq!(answer.status, status, "{path}: {}", answer.body);
        assert!(answer.body["error"]["message"].is_string(), "{path}");
    }
    assert_eq!(h.emulator().events().len(), recorded);
    assert_eq!(
        h.get(&format!("/v1/subscriptions/{id}")).await?.body,
        created["object"]
    );
    Ok(())
}
