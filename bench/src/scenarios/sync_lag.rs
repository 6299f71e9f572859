//! Scenario g, sync lag: Stripe changes at a steady rate through the Stripe emulator's admin
//! routes (each a trial-end move of one of many provisioned subscriptions, so each event makes
//! a real Stigg PATCH), delivered signed to the service; the lag of each event is
//! `processedAt − receivedAt` from `GET /api/stripe/events/{id}`. Judged against the round
//! trips the sync makes to the emulators (a Stripe read and a Stigg PATCH), each measured alone
//! at concurrency 1.

use std::time::{Duration, Instant};

use anyhow::bail;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::service::{
    API_KEY, CORRELATION_ID, Emulator, STRIPE_API_KEY, STRIPE_WEBHOOK_ROUTE, STRIPE_WEBHOOK_SECRET,
    StripeEmulator, UNLIMITED_CALLS_PER_MINUTE, post,
};
use super::sync_events::{Seen, admin, event_state, lag_histogram, millis, quantile};
use super::{Bench, say};
use crate::procs;
use crate::report::Row;
use crate::wrk::{self, Body, round};

/// Target of the issue: p99 of the lag per event.
const TARGET_P99_MS: f64 = 2_000.0;
/// Each change moves a subscription's trial end this much further.
const TRIAL_STEP_S: i64 = 3_600;
/// The driver's own polling query, left out of the service's statements.
const SETTLED_QUERY_START: &str = "SELECT count(*) FROM stripe_events";
/// The Stripe API version the service pins (`Stripe-Version`), for the round-trip probe.
const STRIPE_VERSION: &str = "2025-03-31.basil";
/// How long the service gets to settle what was sent before the run counts the rest as lost.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

/// One change made through the Stripe emulator: when, and the events it recorded.
struct Sent {
    at: DateTime<Utc>,
    events: Vec<String>,
}

impl Bench {
    pub(super) fn sync_lag(&mut self, emulator: &Emulator) -> anyhow::Result<()> {
        let rate = self.config.sync_rate;
        let k = self.config.sync_subscriptions;
        say(&format!(
            "scenario g: {rate} Stripe changes/s over {k} subscriptions, lag until Stigg follows"
        ));
        // Whole minutes, 30 days ahead: far from the three days that make Stripe announce the
        // trial's end, so each change records one `customer.subscription.updated`.
        let trial_end = Utc::now().timestamp() / 60 * 60 + 30 * 86_400;
        self.seed_synced(k, trial_end)?;
        let stripe = self.start_stripe_emulator("stripe-emulator-g")?;
        for n in 1..=k {
            let n = self.n(n);
            admin(
                &stripe,
                "POST",
                "/_emulator/customers",
                &json!({ "id": format!("cus_S{n}"), "name": format!("Sync org {n}") }),
            )?;
            admin(
                &stripe,
                "POST",
                "/_emulator/subscriptions",
                &json!({
                    "id": format!("sub_S{n}"),
                    "customer": format!("cus_S{n}"),
                    "price": { "id": "price_starter_monthly", "lookupKey": "plan_starter_m" },
                    "trialEnd": trial_end,
                }),
            )?;
        }
        self.pg()?.checkpoint()?;
        let service = self.start_service_with(
            "service-g",
            emulator.addr,
            UNLIMITED_CALLS_PER_MINUTE,
            stripe.service_env(),
        )?;
        // Provisioned first, as the trial story does; the changes then move what it created.
        for n in 1..=k {
            let n = self.n(n);
            let body = format!(
                r#"{{"orgId":"org_s{n}","stripeCustomerId":"cus_S{n}","stripeSubscriptionId":"sub_S{n}","planCode":"plan_starter_m"}}"#
            );
            let answer = post(service.addr, &body)?;
            if answer.status != 200 {
                bail!(
                    "provisioning sub_S{n} answered {}: {}",
                    answer.status,
                    answer.text()
                );
            }
        }
        // Deliveries from now on (the objects created above were not delivered).
        admin(
            &stripe,
            "PUT",
            "/_emulator/webhook",
            &json!({
                "url": format!("http://{}{STRIPE_WEBHOOK_ROUTE}", service.addr),
                "secret": STRIPE_WEBHOOK_SECRET,
            }),
        )?;

        let mut changes = 0;
        let mut expected = 0;
        if self.config.warmup_s > 0 {
            let (warm, _) =
                self.paced_changes(&stripe, &mut changes, self.config.warmup_s, trial_end)?;
            expected += warm.iter().map(|s| s.events.len() as u64).sum::<u64>();
            self.wait_settled(expected)?;
        }
        let h0 = lag_histogram(service.addr)?;
        self.pg()?.reset_statements()?;
        let s0 = service.stats()?;
        self.watch("g");
        let m0 = procs::MachineCpu::now();
        let (sent, sending) = self.paced_changes(
            &stripe,
            &mut changes,
            self.config.sync_duration_s,
            trial_end,
        )?;
        let sending_s = sending.as_secs_f64();
        let events: Vec<(&str, DateTime<Utc>)> = sent
            .iter()
            .flat_map(|s| s.events.iter().map(|e| (e.as_str(), s.at)))
            .collect();
        expected += events.len() as u64;
        let settled = self.wait_settled(expected)?;
        let s1 = service.stats()?;
        let busy = procs::MachineCpu::now().busy_percent_since(&m0);
        self.watch("g");
        let h1 = lag_histogram(service.addr)?;
        // The database's share: the statements run while the measured events were handled
        // (the deliveries' own inserts and debug-log rows included).
        let statements: Vec<_> = self
            .pg()?
            .statements()?
            .into_iter()
            .filter(|s| !s.query.starts_with(SETTLED_QUERY_START))
            .collect();
        let sql_calls: u64 = statements.iter().map(|s| s.calls).sum();
        let sql_ms: f64 = statements.iter().map(|s| s.total_ms).sum();
        let (count, sum) = (h1.0 - h0.0, h1.1 - h0.1);
        let histogram = json!({
            "count": count,
            "sumSeconds": round(sum, 3),
            "meanMs": (count > 0.0).then(|| round(sum / count * 1e3, 1)),
        });

        // Each event as the service reports it.
        let mut lags = Vec::new();
        let mut end_to_end = Vec::new();
        let mut statuses: Vec<(String, u64)> = Vec::new();
        for (id, at) in &events {
            let seen = event_state(service.addr, id)?;
            let status = seen.as_ref().map_or("not received", |s| s.status.as_str());
            match statuses.iter_mut().find(|(s, _)| s == status) {
                Some((_, n)) => *n += 1,
                None => statuses.push((status.to_owned(), 1)),
            }
            if let Some(Seen {
                status,
                received_at: Some(received),
                processed_at: Some(processed),
            }) = seen
                && status == "applied"
            {
                lags.push(millis(processed, received));
                end_to_end.push(millis(processed, *at));
            }
        }
        service.daemon.stop(Duration::from_secs(15));
        lags.sort_by(f64::total_cmp);
        end_to_end.sort_by(f64::total_cmp);
        let applied = lags.len() as u64;
        let p50 = quantile(&lags, 0.5);
        let p99 = quantile(&lags, 0.99);
        let p999 = quantile(&lags, 0.999);
        let max = lags.last().copied().unwrap_or(f64::NAN);

        // The limit: the sync's round trips to the emulators, each alone at concurrency 1.
        say("scenario g: round trips to the emulators at concurrency 1 (Stripe read, Stigg PATCH)");
        let probe = |addr, method: &str, path: String, headers: Vec<String>, body| wrk::Load {
            addr,
            path,
            method: method.to_owned(),
            headers,
            body,
            connections: 1,
            threads: 1,
            duration_s: self.config.probe_s,
            width: self.config.width(),
            plans: self.plans.clone(),
            idempotency_prefix: None,
        };
        let n1 = self.n(1);
        let stripe_read = wrk::run(
            &self.config.root,
            &probe(
                stripe.addr,
                "GET",
                format!("/v1/subscriptions/sub_S{n1}"),
                vec![
                    format!("Authorization: Bearer {STRIPE_API_KEY}"),
                    format!("Stripe-Version: {STRIPE_VERSION}"),
                    "User-Agent: onboarding/bench".to_owned(),
                ],
                Body::Static(String::new()),
            ),
            &self.work.join("wrk-g-stripe-read.txt"),
        )?;
        let mut patch = probe(
            emulator.addr,
            "PATCH",
            format!("/api/v1/subscriptions/sub_S{n1}"),
            vec![
                "Content-Type: application/json".to_owned(),
                "Accept: application/json".to_owned(),
                format!("X-API-KEY: {API_KEY}"),
                format!("x-correlation-id: {CORRELATION_ID}"),
                "User-Agent: onboarding/bench".to_owned(),
            ],
            Body::Sequence {
                template: r#"{"trialEndDate":"2031-01-01T00:00:00.000Z"}"#.to_owned(),
                first: 1,
                // More than the probe can send: the run ends on time, not on numbers.
                count: 100_000_000,
            },
        );
        patch.idempotency_prefix = Some(format!("sync:sub_S{n1}:bench:"));
        let stigg_patch = wrk::run(
            &self.config.root,
            &patch,
            &self.work.join("wrk-g-stigg-patch.txt"),
        )?;
        self.watch("g");
        stripe.daemon.stop(Duration::from_secs(10));
        let floor = stripe_read.p50_ms + stigg_patch.p50_ms;

        let cpu_s = (s1.cpu_ticks - s0.cpu_ticks) as f64 / self.ticks;
        let (e2e_p50, e2e_p99) = (quantile(&end_to_end, 0.5), quantile(&end_to_end, 0.99));
        let sent_count = events.len() as u64;
        let per_event = |x: f64| x / (sent_count.max(1) as f64);
        let achieved = sent.len() as f64 / sending_s.max(1e-9);
        let summary = |v: &[f64]| {
            json!({
                "p50": round(quantile(v, 0.5), 1),
                "p90": round(quantile(v, 0.9), 1),
                "p99": round(quantile(v, 0.99), 1),
                "p999": round(quantile(v, 0.999), 1),
                "max": round(v.last().copied().unwrap_or(f64::NAN), 1),
                "mean": round(v.iter().sum::<f64>() / v.len().max(1) as f64, 1),
            })
        };
        self.report.details.insert(
            "g".into(),
            json!({
                "subscriptions": k,
                "targetRatePerSecond": rate,
                "changes": sent.len(),
                "sendingSeconds": round(sending_s, 2),
                "achievedRatePerSecond": round(achieved, 1),
                "eventsSent": sent_count,
                "eventsApplied": applied,
                "eventsByStatus": statuses.iter().map(|(s, n)| (s.clone(), json!(n))).collect::<serde_json::Map<_, _>>(),
                "settledWithinTimeout": settled,
                "lagMs": summary(&lags),
                "changeToAppliedMs": summary(&end_to_end),
                "histogram": histogram,
                "sqlStatementsPerEvent": round(per_event(sql_calls as f64), 2),
                "sqlExecutionMsPerEvent": round(per_event(sql_ms), 3),
                "serviceCpuSeconds": round(cpu_s, 2),
                "stripeReadConcurrency1": stripe_read.to_json(),
                "stiggPatchConcurrency1": stigg_patch.to_json(),
            }),
        );
        self.report.rows.push(Row {
            id: "g".into(),
            title: format!("Stripe sync lag at {rate} events/s (received → applied)"),
            concurrency: None,
            rps: Some(achieved),
            p50_ms: Some(p50),
            p99_ms: Some(p99),
            p999_ms: Some(p999),
            errors: Some(sent_count.saturating_sub(applied)),
            peak_rss_mib: Some(s1.peak_rss_kib as f64 / super::MIB),
            cpu_s: Some(cpu_s),
            machine_busy: Some(busy),
            limit: format!(
                "round trips at concurrency 1: Stripe read {:.2} ms + Stigg PATCH {:.2} ms = {floor:.2} ms (wrk p50); database {:.1} statements, {:.2} ms execution per event; {applied} of {sent_count} events applied, lag max {max:.0} ms; change → applied p50 {:.0} ms, p99 {:.0} ms",
                stripe_read.p50_ms,
                stigg_patch.p50_ms,
                per_event(sql_calls as f64),
                per_event(sql_ms),
                e2e_p50,
                e2e_p99,
            ),
            target: format!("p99 ≤ {:.0} s, every event applied", TARGET_P99_MS / 1e3),
            ratio: format!("p99 {p99:.0} ms"),
            pass: Some(p99 <= TARGET_P99_MS && applied == sent_count),
        });
        Ok(())
    }

    /// `k` organizations `org_s…` (Stripe customer `cus_S…`) with one trialing subscription
    /// `sub_S…` each, on plan_starter_m, the trial ending at `trial_end` (unix seconds).
    fn seed_synced(&self, k: u64, trial_end: i64) -> anyhow::Result<()> {
        let w = self.config.width();
        self.pg()?.script(
            "seed-g",
            &format!(
                r"
INSERT INTO organizations (id, name, tenant_id, stripe_customer_id)
SELECT 'org_s' || lpad(n::text, {w}, '0'), 'Sync org ' || n, NULL, 'cus_S' || lpad(n::text, {w}, '0')
FROM generate_series(1, {k}) AS n;

INSERT INTO subscriptions (id, organization_id, stripe_subscription_id, plan_code, status, trial_ends_at)
SELECT 's_s' || lpad(n::text, {w}, '0'), 'org_s' || lpad(n::text, {w}, '0'), 'sub_S' || lpad(n::text, {w}, '0'),
       'plan_starter_m', 'trialing', to_timestamp({trial_end}) AT TIME ZONE 'utc'
FROM generate_series(1, {k}) AS n;

ANALYZE organizations, subscriptions;
"
            ),
        )
    }

    /// `rate` × `seconds` changes at a steady pace (the next one due every 1/rate s), each
    /// moving the next subscription's trial end; `changes` counts them across calls.
    fn paced_changes(
        &self,
        stripe: &StripeEmulator,
        changes: &mut u64,
        seconds: u32,
        trial_end: i64,
    ) -> anyhow::Result<(Vec<Sent>, Duration)> {
        let k = self.config.sync_subscriptions;
        let total = u64::from(self.config.sync_rate) * u64::from(seconds);
        let gap = Duration::from_secs_f64(1.0 / f64::from(self.config.sync_rate));
        let mut sent = Vec::new();
        let start = Instant::now();
        for i in 0..total {
            let due = start + gap.mul_f64(i as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let n = self.n(*changes % k + 1);
            let round = (*changes / k) as i64 + 1;
            *changes += 1;
            let at = Utc::now();
            let answer = admin(
                stripe,
                "POST",
                &format!("/_emulator/subscriptions/sub_S{n}/trial-end"),
                &json!({ "trialEnd": trial_end + round * TRIAL_STEP_S }),
            )?;
            let events = answer["events"]
                .as_array()
                .map(|list| {
                    list.iter()
                        .filter_map(|e| e["id"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            sent.push(Sent { at, events });
        }
        Ok((sent, start.elapsed()))
    }

    /// Waits until the service has stored `events` events about the scenario's
    /// subscriptions and none is pending (at most [`SETTLE_TIMEOUT`]); false on timeout.
    fn wait_settled(&self, events: u64) -> anyhow::Result<bool> {
        let pg = self.pg()?;
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            let stored = pg.count(&format!(
                "{SETTLED_QUERY_START} WHERE object_id LIKE 'sub_S%' AND status <> 'pending'"
            ))?;
            if stored >= events {
                return Ok(true);
            }
            if Instant::now() > deadline {
                say(&format!(
                    "warning: scenario g: {stored} of {events} events settled after {} s",
                    SETTLE_TIMEOUT.as_secs()
                ));
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
