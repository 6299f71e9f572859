//! Scenarios b and c, the lookup paths: the service under wrk, then the same statements
//! through pgbench (bench/sql plus the debug-log write), whose throughput is the ceiling. The
//! ceiling's runs are shared with scenario f, whose path the database bounds too.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use super::measure::Measured;
use super::pgbench_scripts::LoggedRequest;
use super::service::{Emulator, UNLIMITED_CALLS_PER_MINUTE};
use super::statements::{Batch, debug_log_batch};
use super::{Bench, say};
use crate::pg::Statement;
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
        let lookup_script = self.config.root.join("bench/sql").join(script);
        let defines = self.pgbench_defines(&logged);
        let ceiling = self.pgbench_ceiling(which, &lookup_script, &m, &logged, defines)?;
        let ratio = m.figures.rps / ceiling.best_tps();
        let pgbench_lookups = ceiling.runs.first().map_or(0, |r| r.transactions);
        self.report.details.insert(
            which.to_owned(),
            json!({
                "service": m.figures.to_json(),
                "serviceStatuses": m.statuses_json(),
                "debugLogRowsPerInsert": ceiling.batch.map(|b| round(b.rows_per_insert, 2)),
                "pgbench": ceiling.runs_json(),
                "pgbenchBatchRows": ceiling.rows,
            }),
        );
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
            limit: ceiling.describe("req/s"),
            target: format!("≥ {TARGET_PGBENCH:.2} × limit"),
            ratio: format!("{ratio:.3}"),
            pass: Some(ratio >= TARGET_PGBENCH),
        });
        let rows = ceiling.rows;
        let pgbench_table =
            (!ceiling.statements.is_empty()).then_some((ceiling.statements, pgbench_lookups));
        if let Some(table) = self.statement_table(which, &m, pgbench_table, f64::from(rows)) {
            self.report.statement_tables.push(table);
        }
        Ok(())
    }
}

/// One pgbench run of a ceiling.
pub(super) struct CeilingRun {
    pub(super) clients: u32,
    pub(super) figures: pgbench::Figures,
    /// Transactions and transactions per second of the path's script (not the batch's).
    pub(super) transactions: u64,
    pub(super) tps: f64,
    /// Share of the machine's CPUs busy during the run.
    pub(super) busy: f64,
}

/// pgbench running a path's statements plus the service's debug-log write, at the load's
/// concurrency and at the service's pool size: the ceiling of a path the database bounds.
pub(super) struct Ceiling {
    pub(super) runs: Vec<CeilingRun>,
    /// pg_stat_statements over the first run (at the load's concurrency).
    pub(super) statements: Vec<Statement>,
    /// Debug-log rows per INSERT in the service's measured run.
    pub(super) batch: Option<Batch>,
    /// Rows per INSERT of pgbench's batch script.
    pub(super) rows: u32,
}

impl Ceiling {
    /// The run with the most transactions per second of the path's script.
    pub(super) fn best(&self) -> Option<&CeilingRun> {
        self.runs.iter().max_by(|a, b| a.tps.total_cmp(&b.tps))
    }

    pub(super) fn best_tps(&self) -> f64 {
        self.best().map_or(0.0, |r| r.tps)
    }

    pub(super) fn runs_json(&self) -> Vec<Value> {
        self.runs
            .iter()
            .map(|r| {
                let mut v = r.figures.to_json();
                v["machineBusyPercent"] = json!(round(r.busy, 1));
                v
            })
            .collect()
    }

    /// The limit's cell: the better run, then the other.
    pub(super) fn describe(&self, unit: &str) -> String {
        let Some(best) = self.best() else {
            return "pgbench: no run".to_owned();
        };
        let others: Vec<String> = self
            .runs
            .iter()
            .filter(|r| r.clients != best.clients)
            .map(|r| format!("{} at {}", report::rate(r.tps), r.clients))
            .collect();
        format!(
            "pgbench, same statements: {} {unit} at {} clients, machine {:.0} % busy{}",
            report::rate(best.tps),
            best.clients,
            best.busy,
            if others.is_empty() {
                String::new()
            } else {
                format!(" ({})", others.join(", "))
            }
        )
    }
}

impl Bench {
    /// Runs `script` (weighted by the service's debug-log rows per INSERT in `m`) with the
    /// generated debug-log batch, for the measured duration, at the load's concurrency and at
    /// the service's pool size. Each run gets `:run`, its number from 1, to keep keys apart.
    pub(super) fn pgbench_ceiling(
        &mut self,
        which: &str,
        script: &Path,
        m: &Measured,
        logged: &LoggedRequest,
        defines: Vec<(String, String)>,
    ) -> anyhow::Result<Ceiling> {
        let c = self.config.concurrency;
        let batch = debug_log_batch(&m.statements);
        let rows = batch.map_or(1, |b| b.rows_per_insert.round().max(1.0) as u32);
        let batch_script = self.write_batch_script(which, rows, logged)?;
        let name = script
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut clients = vec![c];
        if self.config.db_pool != c {
            clients.push(self.config.db_pool);
        }
        let mut ceiling = Ceiling {
            runs: Vec::new(),
            statements: Vec::new(),
            batch,
            rows,
        };
        for (run, clients) in clients.into_iter().enumerate() {
            let mut defines = defines.clone();
            defines.push(("run".to_owned(), (run + 1).to_string()));
            let pg = self.pg()?;
            pg.checkpoint()?;
            pg.reset_statements()?;
            let spec = pgbench::Run {
                scripts: vec![(script.to_owned(), rows), (batch_script.clone(), 1)],
                clients,
                threads: self.config.threads,
                length: Length::Seconds(self.config.duration_s),
                defines,
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
            let (transactions, tps) = figures
                .script(&name)
                .map_or((0, 0.0), |s| (s.transactions, s.tps));
            if ceiling.statements.is_empty() {
                ceiling.statements = statements;
            }
            ceiling.runs.push(CeilingRun {
                clients,
                figures,
                transactions,
                tps,
                busy,
            });
        }
        Ok(ceiling)
    }
}
