//! The `/v1` reads: key, object and error shapes, lists and API faults.

use std::time::{Duration, Instant};

use reqwest::Client;
use serde_json::{Value, json};
use stripe_emulator::{ApiFault, NewSubscription, Scoped, SubscriptionChange, SubscriptionStatus};

use crate::support::{KEY, now, price, start, string};

type TestResult = anyhow::Result<()>;

#[tokio::test]
async fn reads_need_the_bearer_key() -> TestResult {
    let h = start().await?;
    let customer = h.customer()?;
    let path = format!("/v1/customers/{customer}");
    let client = Client::new();

    let missing = client.get(h.url(&path)).send().await?;
    assert_eq!(missing.status(), 401);
    let body: Value = missing.json().await?;
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("You did not provide an API key")
    );

    let wrong = client
        .get(h.url(&path))
        .bearer_auth("sk_test_wrongkey9876")
        .send()
        .await?;
    assert_eq!(wrong.status(), 401);
    let body: Value = wrong.json().await?;
    assert_eq!(
        body["error"]["message"],
        "Invalid API Key provided: sk_test_********9876"
    );

    let right = h.get(&path).await?;
    assert_eq!((right.status, &right.body["id"]), (200, &json!(customer)));

    let valid: Vec<(bool, u16)> = h
        .emulator()
        .requests()
        .iter()
        .map(|r| (r.api_key_valid, r.status))
        .collect();
    assert_eq!(valid, [(false, 401), (false, 401), (true, 200)]);
    Ok(())
}

#[tokio::test]
async fn a_subscription_reads_as_stripe_shows_it_in_the_version_asked_for() -> TestResult {
    let h = start().await?;
    let customer = h.customer()?;
    let trial_end = now() + 14 * 86_400;
    let mut new = NewSubscription::new(&customer, price("price_pro_m", "plan_pro_m"));
    new.id = Some("sub_known".to_owned());
    new.trial_end = Some(trial_end);
    new.metadata.insert("orgId".into(), "org_1".into());
    h.emulator().create_subscription(new)?;

    let read = h.get("/v1/subscriptions/sub_known").await?;
    assert_eq!(read.status, 200);
    let s = &read.body;
    assert_eq!(s["object"], "subscription");
    assert_eq!(s["customer"], json!(customer));
    assert_eq!(s["status"], "trialing");
    assert_eq!(s["trial_end"], trial_end);
    assert!(
        s["trial_start"]
            .as_i64()
            .is_some_and(|start| start <= now())
    );
    assert_eq!(
        (
            &s["cancel_at"],
            &s["cancel_at_period_end"],
            &s["canceled_at"]
        ),
        (&Value::Null, &json!(false), &Value::Null)
    );
    assert_eq!(
        (&s["livemode"], &s["metadata"]),
        (&json!(false), &json!({"orgId": "org_1"}))
    );
    assert!(s["created"].is_i64());
    let item = &s["items"]["data"][0];
    assert_eq!(s["items"]["object"], "list");
    assert_eq!(item["price"]["id"], "price_pro_m");
    assert_eq!(item["price"]["lookup_key"], "plan_pro_m");
    assert_eq!(item["price"]["recurring"]["interval"], "month");
    assert_eq!(item["current_period_end"], trial_end);
    // The default version is one that carries the period on the item only.
    assert!(s.get("current_period_end").is_none());
    assert_eq!(
        read.header("stripe-version"),
        Some(h.emulator().api_version())
    );
    assert!(
        read.header("request-id")
            .is_some_and(|id| id.starts_with("req_"))
    );

    let old = Client::new()
        .get(h.url("/v1/subscriptions/sub_known"))
        .bearer_auth(KEY)
        .header("Stripe-Version", "2024-06-20")
        .send()
        .await?;
    assert_eq!(old.headers()["stripe-version"], "2024-06-20");
    let old: Value = old.json().await?;
    assert_eq!(old["current_period_end"], trial_end);
    assert_eq!(old["items"]["data"][0]["current_period_end"], trial_end);
    Ok(())
}

#[tokio::test]
async fn unknown_ids_and_routes_get_stripes_404() -> TestResult {
    let h = start().await?;
    for (path, kind, id) in [
        ("/v1/subscriptions/sub_nope", "subscription", "sub_nope"),
        ("/v1/customers/cus_nope", "customer", "cus_nope"),
        ("/v1/events/evt_nope", "event", "evt_nope"),
    ] {
        let answer = h.get(path).await?;
        assert_eq!(answer.status, 404, "{path}");
        assert_eq!(
            answer.body["error"],
            json!({
                "type": "invalid_request_error",
                "code": "resource_missing",
                "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
                "message": format!("No such {kind}: '{id}'"),
                "param": "id",
            })
        );
        assert!(answer.header("request-id").is_some());
    }
    let route = h.get("/v1/invoices").await?;
    assert_eq!(route.status, 404);
    assert!(
        route.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Unrecognized request URL (GET: /v1/invoices)")
    );

    let bad_version = Client::new()
        .get(h.url("/v1/subscriptions/sub_nope"))
        .bearer_auth(KEY)
        .header("Stripe-Version", "latest")
        .send()
        .await?;
    assert_eq!(bad_version.status(), 400);
    Ok(())
}

#[tokio::test]
async fn a_deleted_customer_reads_as_deleted() -> TestResult {
    let h = start().await?;
    let customer = h.customer()?;
    h.emulator().delete_customer(&customer)?;
    let read = h.get(&format!("/v1/customers/{customer}")).await?;
    assert_eq!(read.status, 200);
    assert_eq!(
        read.body,
        json!({"id": customer, "object": "customer", "deleted": true})
    );
    Ok(())
}

/// The ids of a list answer, and its `has_more`.
fn page(body: &Value) -> (Vec<String>, bool) {
    let ids = body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|item| item["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    (ids, body["has_more"] == json!(true))
}

#[tokio::test]
async fn subscriptions_list_newest_first_with_cursors_and_status_filters() -> TestResult {
    let h = start().await?;
    let customer = h.customer()?;
    let other = h.customer()?;
    // s[0] oldest .. s[4] newest; s[1] is canceled, s[4] belongs to another customer.
    let mut s = Vec::new();
    for owner in [&customer, &customer, &customer, &customer, &other] {
        s.push(h.subscription(owner)?);
    }
    h.emulator()
        .change_subscription(&s[1], SubscriptionChange::Cancel)?;
    let ids = |indexes: &[usize]| indexes.iter().map(|&i| s[i].clone()).collect::<Vec<_>>();

    let default = h.get("/v1/subscriptions").await?;
    assert_eq!(
        (&default.body["object"], &default.body["url"]),
        (&json!("list"), &json!("/v1/subscriptions"))
    );
    assert_eq!(page(&default.body), (ids(&[4, 3, 2, 0]), false));

    let first = h.get("/v1/subscriptions?status=all&limit=2").await?;
    assert_eq!(page(&first.body), (ids(&[4, 3]), true));
    let second = h
        .get(&format!(
            "/v1/subscriptions?status=all&limit=2&starting_after={}",
            s[3]
        ))
        .await?;
    assert_eq!(page(&second.body), (ids(&[2, 1]), true));
    let last = h
        .get(&format!(
            "/v1/subscriptions?status=all&limit=2&starting_after={}",
            s[1]
        ))
        .await?;
    assert_eq!(page(&last.body), (ids(&[0]), false));
    let back = h
        .get(&format!(
            "/v1/subscriptions?status=all&limit=2&ending_before={}",
            s[1]
        ))
        .await?;
    assert_eq!(page(&back.body), (ids(&[3, 2]), true));

    let canceled = h.get("/v1/subscriptions?status=canceled").await?;
    assert_eq!(page(&canceled.body), (ids(&[1]), false));
    let ended = h.get("/v1/subscriptions?status=ended").await?;
    assert_eq!(page(&ended.body), (ids(&[1]), false));
    let theirs = h
        .get(&format!("/v1/subscriptions?status=all&customer={other}"))
        .await?;
    assert_eq!(page(&theirs.body), (ids(&[4]), false));
    Ok(())
}

#[tokio::test]
async fn list_parameters_are_checked_as_stripe_does() -> TestResult {
    let h = start().await?;
    for (query, param) in [
        ("limit=0", Some("limit")),
        ("limit=101", Some("limit")),
        ("limit=ten", Some("limit")),
        ("status=sleeping", Some("status")),
        ("colour=blue", Some("colour")),
        ("starting_after=sub_a&ending_before=sub_b", None),
    ] {
        let answer = h.get(&format!("/v1/subscriptions?{query}")).await?;
        assert_eq!(answer.status, 400, "{query}");
        assert_eq!(answer.body["error"]["type"], "invalid_request_error");
        assert_eq!(
            answer.body["error"].get("param").and_then(Value::as_str),
            param,
            "{query}"
        );
    }
    let cursor = h.get("/v1/subscriptions?starting_after=sub_gone").await?;
    assert_eq!(
        (cursor.status, &cursor.body["error"]["param"]),
        (404, &json!("starting_after"))
    );
    // `expand` is accepted (and ignored) everywhere, as client libraries send it.
    assert_eq!(
        h.get("/v1/subscriptions?expand[]=data.customer")
            .await?
            .status,
        200
    );
    Ok(())
}

#[tokio::test]
async fn events_list_newest_first_filtered_by_type() -> TestResult {
    let h = start().await?;
    let customer = h.customer()?;
    let subscription = h.subscription(&customer)?;
    let status = |status| SubscriptionChange::Status { status };
    h.emulator()
        .change_subscription(&subscription, status(SubscriptionStatus::PastDue))?;
    h.emulator()
        .change_subscription(&subscription, status(SubscriptionStatus::Active))?;

    let all = h.get("/v1/events").await?;
    let types: Vec<&str> = all.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "customer.subscription.updated",
            "customer.subscription.updated",
            "customer.subscription.created",
            "customer.created"
        ]
    );
    assert_eq!(all.body["data"][0]["data"]["object"]["status"], "active");
    assert_eq!(all.body["data"][1]["data"]["object"]["status"], "past_due");

    let newest = string(&all.body["data"][0]["id"])?;
    let older = h
        .get(&format!("/v1/events?limit=2&starting_after={newest}"))
        .await?;
    assert_eq!(
        older.body["data"][0]["data"]["object"]["status"],
        "past_due"
    );
    assert_eq!(older.body["has_more"], true);
    let subscription_events = h.get("/v1/events?type=customer.subscription.*").await?;
    assert_eq!(
        subscription_events.body["data"].as_array().map(Vec::len),
        Some(3)
    );
    let one = h.get(&format!("/v1/events/{newest}")).await?;
    assert_eq!(one.body, all.body["data"][0]);
    Ok(())
}

#[tokio::test]
async fn api_faults_answer_a_status_or_wait_then_stop() -> TestResult {
    let h = start().await?;
    let customer = h.customer()?;
    let path = format!("/v1/customers/{customer}");
    h.emulator()
        .push_api_fault(ApiFault::status(503).on_path("/v1/customers").times(2));
    h.emulator()
        .push_api_fault(ApiFault::status(429).on_path("/v1/subscriptions"));

    let failed = h.get(&path).await?;
    assert_eq!(failed.status, 503);
    assert_eq!(failed.body["error"]["type"], "api_error");
    assert_eq!(h.get(&path).await?.status, 503);
    assert_eq!(h.get(&path).await?.status, 200);
    let limited = h.get("/v1/subscriptions").await?;
    assert_eq!(
        (limited.status, &limited.body["error"]["code"]),
        (429, &json!("rate_limit"))
    );
    assert_eq!(h.get("/v1/subscriptions").await?.status, 200);

    // Through the admin route, as a test driving the binary would.
    let pushed = h
        .admin_post(
            "/faults/api",
            json!({"action": {"type": "delay", "ms": 300}}),
        )
        .await?;
    assert_eq!(
        pushed.body["api"][0]["action"],
        json!({"type": "delay", "ms": 300})
    );
    let started = Instant::now();
    assert_eq!(h.get(&path).await?.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let refused = h
        .admin_post(
            "/faults/api",
            json!({"action": {"type": "status", "status": 99}}),
        )
        .await?;
    assert_eq!(refused.status, 400);
    Ok(())
}
