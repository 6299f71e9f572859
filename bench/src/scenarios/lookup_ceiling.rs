//! Scenarios b and c, the lookup paths: the service under wrk, then the same statements
//! through pgbench (bench/sql plus the debug-log write), whose throughput is the ceiling.

use std::time::Duration;

use serde_json::json;

use super::pgbench_scripts::LoggedRequest;
use super::service::{Emulator, UNLIMITED_CALLS_PER_MINUTE};
use super::statements::debug_log_batch;
use super::{Bench, say};
use crate::pgbench::{self, Length};
use crate::procs;
use crate::report::{self, Row};
use crate::wrk::{Body, round};

/// Target of the issue: the service's req/s against pgbench's.
const TARGET_PGBENCH: f64 = 0.6;

/// A lookup path and what pgbench needs to run its statements.
pub(super) struct Lookup {
    /// The scenario (`b`, `c`): its row, its logs and its files.
    pub(super) which: &'static str,
    pub(super) title: &'static str,
    /// wrk's request body: `{n}` a seeded number between `first` and `last` (random),
    /// `{plan}` its plan code.
    pub(super) template: String,
    pub(super) first: u64,
    pub(super) last: u64,
    /// The statements of one request, in bench/sql.
    pub(super) script: &'static str,
    /// The debug-log row of each request; its status is the expected one.
    pub(super) logged: LoggedRequest,
}

impl Bench {
    pub(super) fn lookup(&mut self, lookup: Lookup, emulator: &Emulator) -> anyhow::Result<()> {
        let c = self.config.concurrency;
        let Lookup {
            which,
            title,
            template,
            first,
            last,
            script,
            logged,
        } = lookup;
        let expected = logged.status;
        say(&format!(
            "scenario {which}: {title}, then pgbench on its statements"
        ));
        self.pg()?.checkpoint()?;
        let service = self.start_service(
            &format!("service-{which}"),
            emulator.addr,
            UNLIMITED_CALLS_PER_MINUTE,
        )?;
        let body = || Body::Random {
            template: template.clone(),
            first,
            last,
        };
        let warm = self.load(service.addr, body(), c, self.config.warmup_s);
        let load = self.load(service.addr, body(), c, self.config.duration_s);
        let m = self.measure(&service, Some(warm), load, which)?;
        service.daemon.stop(Duration::from_secs(15));

        // The limit: the same statements through pgbench, at the same concurrency and at the
        // service's pool size; the better of the two is the ceiling.
        let batch = debug_log_batch(&m.statements);
        let rows = batch.map_or(1, |b| b.rows_per_insert.round().max(1.0) as u32);
        let batch_script = self.write_batch_script(which, rows, &logged)?;
        let lookup_script = self.config.root.join("bench/sql").join(script);
        let mut runs = Vec::new();
        let mut clients = vec![c];
        if self.config.db_pool != c {
            clients.push(self.config.db_pool);
        }
        let mut pgbench_statements = Vec::new();
        for clients in clients {
            let pg = self.pg()?;
            pg.checkpoint()?;
            pg.reset_statements()?;
            let spec = pgbench::Run {
                scripts: vec![(lookup_script.clone(), rows), (batch_script.clone(), 1)],
                clients,
                threads: self.config.threads,
                length: Length::Seconds(self.config.duration_s),
                defines: self.pgbench_defines(&logged),
                per_statement: false,
            };
            let m0 = procs::MachineCpu::now();
            let figures = pgbench::run(
                &pg.pgbench(),
                &pg.url,
                &spec,
                &self.work.join(format!("pgbench-{which}-c{clients}.txt")),
            )?;
            let busy = procs::MachineCpu::now().busy_percent_since(&m0);
            let statements = pg.statements()?;
            self.watch(which);
            let lookups = figures.script(script).map_or(0, |s| s.transactions);
            if pgbench_statements.is_empty() {
                pgbench_statements = statements;
            }
            runs.push((clients, figures, lookups, busy));
        }
        let best = runs
            .iter()
            .map(|(clients, f, _, busy)| (*clients, f.script(script).map_or(0.0, |s| s.tps), *busy))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((c, 0.0, 0.0));
        let ratio = m.figures.rps / best.1;
        let pgbench_lookups = runs.first().map_or(0, |r| r.2);
        self.report.details.insert(
            which.to_owned(),
            json!({
                "service": m.figures.to_json(),
                "serviceStatuses": m.statuses_json(),
                "debugLogRowsPerInsert": batch.map(|b| round(b.rows_per_insert, 2)),
                "pgbench": runs.iter().map(|(_, f, _, busy)| {
                    let mut v = f.to_json();
                    v["machineBusyPercent"] = json!(round(*busy, 1));
                    v
                }).collect::<Vec<_>>(),
                "pgbenchBatchRows": rows,
            }),
        );
        let others: Vec<String> = runs
            .iter()
            .filter(|(clients, _, _, _)| *clients != best.0)
            .map(|(clients, f, _, _)| {
                format!(
                    "{} at {clients}",
                    report::rate(f.script(script).map_or(0.0, |s| s.tps))
                )
            })
            .collect();
        self.report.rows.push(Row {
            id: which.to_owned(),
            title: title.to_owned(),
            concurrency: Some(c),
            rps: Some(m.figures.rps),
            p50_ms: Some(m.figures.p50_ms),
            p99_ms: Some(m.figures.p99_ms),
            p999_ms: Some(m.figures.p999_ms),
            errors: Some(m.errors(expected)),
            peak_rss_mib: Some(m.peak_rss_mib),
            cpu_s: Some(m.cpu_s),
            machine_busy: Some(m.machine_busy),
            limit: format!(
                "pgbench, same statements: {} req/s at {} clients, machine {:.0} % busy{}",
                report::rate(best.1),
                best.0,
                best.2,
                if others.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", others.join(", "))
                }
            ),
            target: format!("≥ {TARGET_PGBENCH:.2} × limit"),
            ratio: format!("{ratio:.3}"),
            pass: Some(ratio >= TARGET_PGBENCH),
        });
        let pgbench_table =
            (!pgbench_statements.is_empty()).then_some((pgbench_statements, pgbench_lookups));
        if let Some(table) = self.statement_table(which, &m, pgbench_table, f64::from(rows)) {
            self.report.statement_tables.push(table);
        }
        Ok(())
    }
}
