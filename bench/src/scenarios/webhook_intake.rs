//! Scenario f, webhook intake: signed Stripe deliveries, each a distinct `invoice.paid` event
//! (stored `ignored`, so the sync's worker stays idle), at full concurrency; the figure is the
//! events stored per second (rows in `stripe_events`), against pgbench running the same
//! `INSERT … ON CONFLICT DO NOTHING` with the debug-log write.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use onboarding_adapters_stripe::{WebhookSecrets, sign};
use serde_json::json;

use super::pgbench_scripts::LoggedRequest;
use super::service::{
    Emulator, STRIPE_WEBHOOK_ROUTE, STRIPE_WEBHOOK_SECRET, UNLIMITED_CALLS_PER_MINUTE,
};
use super::{Bench, say};
use crate::report::{self, Row};
use crate::wrk::{self, Body, round};

/// Target of the issue: events stored per second at 64 connections.
const TARGET_STORED_PER_S: f64 = 3_000.0;
/// Digits of the events' numbers (`evt_bench0000001`).
const WIDTH: usize = 7;

/// A Stripe `invoice.paid` event as Stripe delivers it (trimmed to the fields that matter):
/// a type the sync does not handle, so the service stores it `ignored`. Spaced after colons as
/// Stripe's own bodies are, on one line (a line of the requests file); the spacing also keeps
/// pgbench from reading `:null` in its debug-log literal as a variable.
fn event_body(id: &str, created: i64) -> String {
    format!(
        r#"{{"id": "evt_{id}", "object": "event", "api_version": "2025-03-31.basil", "created": {created}, "livemode": false, "pending_webhooks": 1, "request": {{"id": null, "idempotency_key": null}}, "type": "invoice.paid", "data": {{"object": {{"id": "in_{id}", "object": "invoice", "customer": "cus_B000001", "subscription": "sub_B000001", "status": "paid", "amount_paid": 2900, "currency": "usd"}}}}}}"#
    )
}

impl Bench {
    pub(super) fn webhook_intake(&mut self, emulator: &Emulator) -> anyhow::Result<()> {
        say("scenario f: signed Stripe deliveries stored, then pgbench on the same INSERT");
        let c = self.config.concurrency;
        let count = self.config.webhook_events;
        let secrets = WebhookSecrets::parse(STRIPE_WEBHOOK_SECRET)
            .context("the benchmark's webhook secret does not parse")?;
        // Signed now: the service accepts them for STRIPE_WEBHOOK_TOLERANCE_SECS (300 s),
        // longer than the warm-up and the measured run.
        let t = chrono::Utc::now().timestamp();
        let warm_file =
            self.signed_events("f-warmup", "benchw", (count / 4).max(1), t, &secrets)?;
        let file = self.signed_events("f", "bench", count, t, &secrets)?;

        // The service needs Stripe's settings for the route; it never calls Stripe here.
        let stripe = self.start_stripe_emulator("stripe-emulator-f")?;
        self.pg()?.checkpoint()?;
        let service = self.start_service_with(
            "service-f",
            emulator.addr,
            UNLIMITED_CALLS_PER_MINUTE,
            stripe.service_env(),
        )?;
        let load = |file: PathBuf, duration_s: u32| wrk::Load {
            addr: service.addr,
            path: STRIPE_WEBHOOK_ROUTE.to_owned(),
            method: "POST".to_owned(),
            headers: vec![
                "Content-Type: application/json; charset=utf-8".to_owned(),
                "User-Agent: Stripe/1.0 (+https://stripe.com/docs/webhooks)".to_owned(),
            ],
            body: Body::Lines {
                file,
                header: "Stripe-Signature".to_owned(),
            },
            connections: c,
            threads: self.config.threads.min(c),
            duration_s,
            width: self.config.width(),
            plans: self.plans.clone(),
            idempotency_prefix: None,
        };
        if self.config.warmup_s > 0 {
            wrk::run(
                &self.config.root,
                &load(warm_file, self.config.warmup_s),
                &self.work.join("wrk-f-warmup.txt"),
            )?;
        }
        let count_rows = "SELECT count(*) FROM stripe_events WHERE event_id LIKE 'evt_bench%'";
        let before = self.pg()?.count(count_rows)?;
        let m = self.measure(&service, None, load(file, self.config.duration_s), "f")?;
        let stored = self.pg()?.count(count_rows)?.saturating_sub(before);
        let pending = self
            .pg()?
            .count("SELECT count(*) FROM stripe_events WHERE status = 'pending'")?;
        service.daemon.stop(Duration::from_secs(15));
        stripe.daemon.stop(Duration::from_secs(10));
        let stored_per_s = stored as f64 / m.figures.duration_s.max(1e-9);
        // wrk's threads stop when their share of the events is used up, but wrk still divides
        // by the whole duration: then the figure is understated.
        if m.figures.requests + u64::from(c) >= count {
            self.report.notes.push(format!(
                "Scenario f used up its {count} signed events before the end of the run: its stored/s is understated; raise BENCH_WEBHOOK_EVENTS."
            ));
        }

        // The limit: the same INSERT through pgbench, with the debug-log write, each
        // transaction a distinct event.
        let sample = event_body(&format!("bench{:0WIDTH$}", 1), t);
        let body_bytes = sample.len();
        let logged = LoggedRequest {
            body: sample.clone(),
            status: "200",
            code: None,
        };
        let mut defines = self.pgbench_defines(&logged);
        defines.extend(
            [
                ("i", "0".to_owned()),
                ("stride", "100000000".to_owned()),
                ("evwidth", "13".to_owned()),
                ("evtype", "invoice.paid".to_owned()),
                ("evstatus", "ignored".to_owned()),
                ("zero", "0".to_owned()),
                ("payload", sample),
            ]
            .map(|(k, v)| (k.to_owned(), v)),
        );
        let script = self.config.root.join("bench/sql/stripe_event_insert.sql");
        let ceiling = self.pgbench_ceiling("f", &script, &m, &logged, defines)?;
        let limit = ceiling.best_tps();
        let ratio = stored_per_s / limit;
        self.report.details.insert(
            "f".into(),
            json!({
                "service": m.figures.to_json(),
                "serviceStatuses": m.statuses_json(),
                "eventsSigned": count,
                "eventsStored": stored,
                "storedPerSecond": round(stored_per_s, 1),
                "pendingAfter": pending,
                "bodyBytes": body_bytes,
                "debugLogRowsPerInsert": ceiling.batch.map(|b| round(b.rows_per_insert, 2)),
                "pgbench": ceiling.runs_json(),
                "pgbenchBatchRows": ceiling.rows,
                "storedOverLimit": round(ratio, 3),
            }),
        );
        self.report.rows.push(Row {
            id: "f".into(),
            title: "Stripe webhook intake (stored events/s)".into(),
            concurrency: Some(c),
            rps: Some(stored_per_s),
            p50_ms: Some(m.figures.p50_ms),
            p99_ms: Some(m.figures.p99_ms),
            p999_ms: Some(m.figures.p999_ms),
            errors: Some(m.errors("200")),
            peak_rss_mib: Some(m.peak_rss_mib),
            cpu_s: Some(m.cpu_s),
            machine_busy: Some(m.machine_busy),
            limit: format!(
                "{}; the service stored {} ({ratio:.3} × limit)",
                ceiling.describe("inserts/s"),
                report::rate(stored_per_s)
            ),
            target: format!("≥ {} stored/s", report::rate(TARGET_STORED_PER_S)),
            ratio: format!("{} /s", report::rate(stored_per_s)),
            pass: Some(stored_per_s >= TARGET_STORED_PER_S),
        });
        let transactions = ceiling.runs.first().map_or(0, |r| r.transactions);
        let rows = ceiling.rows;
        let pgbench_table =
            (!ceiling.statements.is_empty()).then_some((ceiling.statements, transactions));
        if let Some(table) = self.statement_table("f", &m, pgbench_table, f64::from(rows)) {
            self.report.statement_tables.push(table);
        }
        Ok(())
    }

    /// `count` distinct events `evt_<prefix>0000001`…, signed at `t`, one line each
    /// (`<Stripe-Signature>\t<body>`) in the run's directory.
    fn signed_events(
        &self,
        name: &str,
        prefix: &str,
        count: u64,
        t: i64,
        secrets: &WebhookSecrets,
    ) -> anyhow::Result<PathBuf> {
        let path = self.work.join(format!("signed-events-{name}.tsv"));
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(&path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        );
        for n in 1..=count {
            let body = event_body(&format!("{prefix}{n:0WIDTH$}"), t);
            writeln!(out, "{}\t{body}", sign(body.as_bytes(), secrets, t))?;
        }
        out.flush()?;
        Ok(path)
    }
}
