//! Statements per request: the service's pg_stat_statements snapshot of a measured run,
//! grouped by kind, next to pgbench's; and how many debug-log rows each INSERT wrote.

use super::Bench;
use super::measure::Measured;
use crate::pg::{self, Statement};
use crate::report::StatementTable;

impl Bench {
    /// Statements per request: the service's (pg_stat_statements over the measured run) next
    /// to pgbench's per request-equivalent.
    pub(super) fn statement_table(
        &self,
        scenario: &str,
        m: &Measured,
        pgbench: Option<(Vec<Statement>, u64)>,
        batch_rows: f64,
    ) -> Option<StatementTable> {
        if m.statements.is_empty() || m.figures.requests == 0 {
            return None;
        }
        // Requests answered during the measured window, by the service's own count.
        let requests: f64 = m.statuses.iter().map(|(_, n)| *n).sum::<f64>().max(1.0);
        let group = |statements: &[Statement]| -> Vec<(String, u64, f64)> {
            let mut out: Vec<(String, u64, f64)> = Vec::new();
            for s in statements {
                let k = pg::kind(&s.query);
                match out.iter_mut().find(|(kk, _, _)| *kk == k) {
                    Some((_, calls, ms)) => {
                        *calls += s.calls;
                        *ms += s.total_ms;
                    }
                    None => out.push((k, s.calls, s.total_ms)),
                }
            }
            out
        };
        let svc = group(&m.statements);
        let pgb = pgbench
            .as_ref()
            .map(|(s, lookups)| (group(s), *lookups as f64));
        let mut rows: Vec<(String, f64, Option<f64>, f64)> = svc
            .iter()
            .filter(|(k, _, _)| !k.starts_with("SET "))
            .map(|(k, calls, ms)| {
                let per_pgbench = pgb.as_ref().map(|(list, lookups)| {
                    list.iter()
                        .filter(|(kk, _, _)| kk == k)
                        .map(|(_, calls, _)| *calls as f64 / lookups.max(1.0))
                        // A fold from +0.0: an empty f64 sum is -0.0, shown as "-0.000".
                        .fold(0.0, |sum, x| sum + x)
                });
                (
                    k.clone(),
                    *calls as f64 / requests,
                    per_pgbench,
                    ms / (*calls).max(1) as f64,
                )
            })
            .collect();
        rows.sort_by(|a, b| b.1.total_cmp(&a.1));
        let inserts = debug_log_batch(&m.statements);
        let note = match inserts {
            Some(b) => format!(
                "The service wrote its {} debug-log rows in {} INSERT statements: {:.1} rows per statement (group commit){}.",
                b.rows,
                b.calls,
                b.rows_per_insert,
                if batch_rows > 0.0 {
                    format!("; pgbench's batch script inserts {batch_rows:.0} rows per statement")
                } else {
                    String::new()
                }
            ),
            None => String::new(),
        };
        Some(StatementTable {
            scenario: scenario.to_owned(),
            rows,
            note,
        })
    }
}

/// Debug-log rows and INSERT statements in a pg_stat_statements snapshot.
#[derive(Debug, Clone, Copy)]
pub(super) struct Batch {
    pub(super) rows: u64,
    pub(super) calls: u64,
    pub(super) rows_per_insert: f64,
}

pub(super) fn debug_log_batch(statements: &[Statement]) -> Option<Batch> {
    let (rows, calls) = statements
        .iter()
        .filter(|s| s.query.starts_with("INSERT INTO \"debug_logs\""))
        .fold((0, 0), |(r, c), s| (r + s.rows, c + s.calls));
    (calls > 0).then(|| Batch {
        rows,
        calls,
        rows_per_insert: rows as f64 / calls as f64,
    })
}
