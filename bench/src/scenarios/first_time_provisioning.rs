//! Scenario d, first-time provisioning: distinct, never-provisioned subscriptions at full
//! concurrency (throughput), then at concurrency 1 (latency), judged against the round trips
//! the path makes (the database through pgbench, the emulator through wrk), each measured alone.

use std::time::Duration;

use serde_json::json;

use super::service::{API_KEY, CORRELATION_ID, Emulator, UNLIMITED_CALLS_PER_MINUTE};
use super::statements::debug_log_batch;
use super::{Bench, say};
use crate::pg;
use crate::pgbench::{self, Length};
use crate::report::Row;
use crate::wrk::{self, Body, round};

/// Target of the issue: the concurrency-1 p50 over the sum of the round trips.
const TARGET_LATENCY_MARGIN_MS: f64 = 2.0;

impl Bench {
    pub(super) fn first_time_provisioning(&mut self, emulator: &Emulator) -> anyhow::Result<()> {
        say("scenario d: first-time provisioning of distinct subscriptions");
        let c = self.config.concurrency;
        let r = self.config.ranges();
        let template = r#"{"orgId":"org_b{n}","stripeCustomerId":"cus_B{n}","stripeSubscriptionId":"sub_B{n}","planCode":"{plan}"}"#;
        self.pg()?.checkpoint()?;
        let service = self.start_service("service-d", emulator.addr, UNLIMITED_CALLS_PER_MINUTE)?;
        let seq = |first: u64, count: u64| Body::Sequence {
            template: template.to_owned(),
            first,
            count,
        };
        let warm = self.load(
            service.addr,
            seq(r.warmup.start, r.warmup.end - r.warmup.start),
            c,
            self.config.warmup_s,
        );
        let load = self.load(
            service.addr,
            seq(r.first_time.start, self.config.first_time),
            c,
            self.config.duration_s,
        );
        let m = self.measure(&service, Some(warm), load, "d")?;
        let provisioned = self.pg()?.count(&format!(
            "SELECT count(*) FROM stigg_subscription_provisions WHERE provisioned_at IS NOT NULL \
             AND stripe_subscription_id >= 'sub_B{}' AND stripe_subscription_id <= 'sub_B{}'",
            self.n(r.first_time.start),
            self.n(r.first_time.end - 1)
        ))?;

        // Latency at concurrency 1: the service, then each round trip on its own.
        say("scenario d: latency probes at concurrency 1 (service, emulator, pgbench)");
        let probe_s = self.config.probe_s;
        let probe = self.load(
            service.addr,
            seq(r.service_probe.start, self.config.probe),
            1,
            probe_s,
        );
        self.watch("d");
        let svc1 = wrk::run(&self.config.root, &probe, &self.work.join("wrk-d-c1.txt"))?;
        service.daemon.stop(Duration::from_secs(15));

        let emu = |path: &str, template: &str, prefix: &str, count: u64| wrk::Load {
            addr: emulator.addr,
            path: path.to_owned(),
            method: "POST".to_owned(),
            headers: vec![
                "Content-Type: application/json".to_owned(),
                "Accept: application/json".to_owned(),
                format!("X-API-KEY: {API_KEY}"),
                format!("x-correlation-id: {CORRELATION_ID}"),
                "User-Agent: onboarding/bench".to_owned(),
            ],
            body: Body::Sequence {
                template: template.to_owned(),
                first: 1,
                count,
            },
            connections: 1,
            threads: 1,
            duration_s: probe_s,
            width: self.config.width(),
            plans: self.plans.clone(),
            idempotency_prefix: Some(prefix.to_owned()),
        };
        let customers = wrk::run(
            &self.config.root,
            &emu(
                "/api/v1/customers",
                r#"{"id":"org_r{n}","name":"Bench org {n}","billingId":"cus_R{n}","metadata":{"orgId":"org_r{n}","stripeCustomerId":"cus_R{n}"}}"#,
                "customer:org_r",
                self.config.probe,
            ),
            &self.work.join("wrk-d-emulator-customers.txt"),
        )?;
        let subscriptions = wrk::run(
            &self.config.root,
            &emu(
                "/api/v1/subscriptions",
                r#"{"id":"sub_R{n}","customerId":"org_r{n}","planId":"plan-starter","billingPeriod":"MONTHLY","billingId":"sub_R{n}","paymentCollectionMethod":"NONE","trialOverrideConfiguration":{"isTrial":true,"trialEndDate":"2030-01-01T00:00:00Z","trialEndBehavior":"CONVERT_TO_PAID"},"metadata":{"orgId":"org_r{n}","planCode":"plan_starter_m","stripeSubscriptionId":"sub_R{n}"}}"#,
                "subscription:sub_R",
                // Only for customers that exist (the same numbers, from the same start).
                customers.requests.min(self.config.probe),
            ),
            &self.work.join("wrk-d-emulator-subscriptions.txt"),
        )?;
        let pg = self.pg()?;
        pg.checkpoint()?;
        let mut defines = self.pgbench_defines(&self.logged_provisioning());
        defines.push(("first".to_owned(), (r.db_probe.start - 1).to_string()));
        defines.push(("stride".to_owned(), self.config.probe.to_string()));
        defines.push(("i".to_owned(), "0".to_owned()));
        let db = pgbench::run(
            &pg.pgbench(),
            &pg.url,
            &pgbench::Run {
                scripts: vec![(self.config.root.join("bench/sql/first_time.sql"), 1)],
                clients: 1,
                threads: 1,
                length: Length::Transactions(self.config.probe),
                defines,
                per_statement: true,
            },
            &self.work.join("pgbench-d-c1.txt"),
        )?;
        self.watch("d");
        // The debug-log row is written after the answer (ADR 0006), off the request's path.
        let sql: Vec<f64> = db
            .scripts
            .first()
            .map(|s| {
                s.statements
                    .iter()
                    .filter(|(_, cmd)| {
                        !cmd.starts_with('\\')
                            && !pg::kind(cmd).starts_with("INSERT INTO debug_logs")
                    })
                    .map(|(ms, _)| *ms)
                    .collect()
            })
            .unwrap_or_default();
        // The organization and subscription lookups run side by side in the service: only
        // the slower one is on the critical path.
        let parallel_saving = match sql.as_slice() {
            [a, b, ..] => a.min(*b),
            _ => 0.0,
        };
        let db_ms = sql.iter().sum::<f64>() - parallel_saving;
        let emu_ms = customers.p50_ms + subscriptions.p50_ms;
        let floor = db_ms + emu_ms;
        let margin = svc1.p50_ms - floor;
        let little = f64::from(c) / m.figures.rps * 1000.0;
        // wrk's thread stops when its share of the sequence is used up, but wrk still divides
        // by the whole duration: then the throughput is understated.
        let exhausted = m.figures.requests + u64::from(c) >= self.config.first_time;
        if exhausted {
            self.report.notes.push(format!(
                "Scenario d used up its {} subscriptions before the end of the run: its req/s is understated; raise BENCH_FIRST_TIME.",
                self.config.first_time
            ));
        }
        let probe_exhausted = svc1.requests + 1 >= self.config.probe;
        self.report.details.insert(
            "d".into(),
            json!({
                "service": m.figures.to_json(),
                "serviceStatuses": m.statuses_json(),
                "distinctProvisioned": provisioned,
                "serviceConcurrency1": svc1.to_json(),
                "emulatorCustomersConcurrency1": customers.to_json(),
                "emulatorSubscriptionsConcurrency1": subscriptions.to_json(),
                "pgbenchConcurrency1": db.to_json(),
                "pgbenchStatementLatenciesMs": db.scripts.first().map(|s| s.statements.iter().map(|(ms, cmd)| json!({"ms": ms, "command": cmd.chars().take(120).collect::<String>()})).collect::<Vec<_>>()),
                "dbRoundTripsMs": round(db_ms, 3),
                "emulatorRoundTripsMs": round(emu_ms, 3),
                "debugLogRowsPerInsert": debug_log_batch(&m.statements).map(|b| round(b.rows_per_insert, 2)),
            }),
        );
        self.report.rows.push(Row {
            id: "d".into(),
            title: "first-time provisioning (throughput)".into(),
            concurrency: Some(c),
            rps: Some(m.figures.rps),
            p50_ms: Some(m.figures.p50_ms),
            p99_ms: Some(m.figures.p99_ms),
            p999_ms: Some(m.figures.p999_ms),
            errors: Some(m.errors("200")),
            peak_rss_mib: Some(m.peak_rss_mib),
            cpu_s: Some(m.cpu_s),
            machine_busy: Some(m.machine_busy),
            limit: format!(
                "{} distinct subscriptions provisioned; at {c} connections p50 is queueing ({c} / throughput = {little:.1} ms)",
                provisioned
            ),
            target: "(judged at concurrency 1, next row)".into(),
            ratio: "–".into(),
            pass: None,
        });
        self.report.rows.push(Row {
            id: "d".into(),
            title: "first-time provisioning (latency)".into(),
            concurrency: Some(1),
            rps: (!probe_exhausted).then_some(svc1.rps),
            p50_ms: Some(svc1.p50_ms),
            p99_ms: Some(svc1.p99_ms),
            p999_ms: Some(svc1.p999_ms),
            errors: Some(svc1.socket_errors + svc1.non_2xx),
            limit: format!(
                "round trips at concurrency 1: database {db_ms:.2} ms (pgbench, {} statements, critical path) + emulator {emu_ms:.2} ms (wrk p50: customer {:.2} + subscription {:.2}) = {floor:.2} ms",
                sql.len(),
                customers.p50_ms,
                subscriptions.p50_ms
            ),
            target: format!("p50 ≤ limit + {TARGET_LATENCY_MARGIN_MS:.0} ms"),
            ratio: format!("{margin:+.2} ms"),
            pass: Some(margin <= TARGET_LATENCY_MARGIN_MS),
            ..Row::default()
        });
        if let Some(table) = self.statement_table("d", &m, None, 0.0) {
            self.report.statement_tables.push(table);
        }
        Ok(())
    }
}
