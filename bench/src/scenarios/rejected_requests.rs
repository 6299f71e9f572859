//! Scenario a, rejected requests: a body the service answers 400 (an unknown plan code),
//! against a bare actix-web handler answering the same bytes, with the same load.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;

use super::service::{Emulator, UNLIMITED_CALLS_PER_MINUTE, post, wait_port};
use super::statements::debug_log_batch;
use super::{Bench, MIB, say};
use crate::procs::{self, Daemon};
use crate::report::{self, Row};
use crate::wrk::{self, Body, round};

/// Target of the issue: the service's req/s against the bare handler's.
const TARGET_BARE: f64 = 0.8;

impl Bench {
    pub(super) fn rejected_requests(&mut self, emulator: &Emulator) -> anyhow::Result<()> {
        say("scenario a: 400 validation failure, then the bare handler");
        let c = self.config.concurrency;
        let body = self.bodies()[0].1.clone();
        self.pg()?.checkpoint()?;
        let service = self.start_service("service-a", emulator.addr, UNLIMITED_CALLS_PER_MINUTE)?;
        if self.bad_request_answer.is_none() {
            self.bad_request_answer = Some(post(service.addr, &body)?.text());
        }
        let warm = self.load(
            service.addr,
            Body::Static(body.clone()),
            c,
            self.config.warmup_s,
        );
        let load = self.load(
            service.addr,
            Body::Static(body.clone()),
            c,
            self.config.duration_s,
        );
        let m = self.measure(&service, Some(warm), load, "a")?;
        service.daemon.stop(Duration::from_secs(15));
        let batch = debug_log_batch(&m.statements);

        // The limit: the bare handler, same generator, same request.
        let answer_file = self.work.join("bare-handler-answer.json");
        std::fs::write(
            &answer_file,
            self.bad_request_answer.clone().unwrap_or_default(),
        )?;
        let addr = SocketAddr::from(([127, 0, 0, 1], procs::free_port()?));
        let bare = Daemon::start(
            "bare-handler",
            &self.config.bin_dir.join("bare-handler"),
            &[
                "--bind".to_owned(),
                addr.to_string(),
                "--body-file".to_owned(),
                answer_file.display().to_string(),
            ],
            &[],
            &self.work.join("bare-handler.log"),
            &self.work,
        )?;
        wait_port(addr, &bare)?;
        let warm = self.load(addr, Body::Static(body.clone()), c, self.config.warmup_s);
        if self.config.warmup_s > 0 {
            wrk::run(
                &self.config.root,
                &warm,
                &self.work.join("wrk-a-bare-warmup.txt"),
            )?;
        }
        let s0 = bare.stats()?;
        self.watch("a");
        let m0 = procs::MachineCpu::now();
        let limit = wrk::run(
            &self.config.root,
            &self.load(addr, Body::Static(body), c, self.config.duration_s),
            &self.work.join("wrk-a-bare.txt"),
        )?;
        let s1 = bare.stats()?;
        let bare_busy = procs::MachineCpu::now().busy_percent_since(&m0);
        self.watch("a");
        bare.stop(Duration::from_secs(10));
        let bare_2xx = limit.requests.saturating_sub(limit.non_2xx);

        let ratio = m.figures.rps / limit.rps;
        self.report.details.insert(
            "a".into(),
            json!({
                "service": m.figures.to_json(),
                "serviceStatuses": m.statuses_json(),
                "bareHandler": limit.to_json(),
                "bareHandlerCpuSeconds": round((s1.cpu_ticks - s0.cpu_ticks) as f64 / self.ticks, 2),
                "bareHandlerPeakRssMiB": round(s1.peak_rss_kib as f64 / MIB, 1),
                "bareHandlerMachineBusyPercent": round(bare_busy, 1),
                "debugLogRowsPerInsert": batch.map(|b| round(b.rows_per_insert, 2)),
            }),
        );
        self.report.rows.push(Row {
            id: "a".into(),
            title: "400 validation failure".into(),
            concurrency: Some(c),
            rps: Some(m.figures.rps),
            p50_ms: Some(m.figures.p50_ms),
            p99_ms: Some(m.figures.p99_ms),
            p999_ms: Some(m.figures.p999_ms),
            errors: Some(m.errors("400")),
            peak_rss_mib: Some(m.peak_rss_mib),
            cpu_s: Some(m.cpu_s),
            machine_busy: Some(m.machine_busy),
            limit: format!(
                "bare actix-web handler: {} req/s (p50 {:.2} ms, p99 {:.2} ms, {} errors, machine {bare_busy:.0} % busy)",
                report::rate(limit.rps),
                limit.p50_ms,
                limit.p99_ms,
                limit.socket_errors + bare_2xx
            ),
            target: format!("≥ {TARGET_BARE:.2} × limit"),
            ratio: format!("{ratio:.3}"),
            pass: Some(ratio >= TARGET_BARE),
        });
        if let Some(table) = self.statement_table("a", &m, None, 0.0) {
            self.report.statement_tables.push(table);
        }
        Ok(())
    }
}
