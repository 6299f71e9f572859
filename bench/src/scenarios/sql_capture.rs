//! The SQL of each path, captured from the service with `log_statement = all` (one request
//! per path), and the check that the pgbench scripts in bench/sql still hold exactly it.

use std::time::Duration;

use anyhow::bail;
use serde_json::{Value, json};

use super::service::{Emulator, UNLIMITED_CALLS_PER_MINUTE, post};
use super::{Bench, say};
use crate::pg;

impl Bench {
    pub(super) fn bodies(&self) -> Vec<(&'static str, String)> {
        let r = self.config.ranges();
        let one = self.n(1);
        let cap = self.n(r.capture);
        vec![
            (
                "a",
                format!(
                    r#"{{"orgId":"org_b{one}","stripeCustomerId":"cus_B{one}","stripeSubscriptionId":"sub_B{one}","planCode":"plan_unknown"}}"#
                ),
            ),
            (
                "b",
                format!(
                    r#"{{"orgId":"org_x{one}","stripeCustomerId":"cus_X{one}","stripeSubscriptionId":"sub_X{one}","planCode":"{}"}}"#,
                    self.plans[0]
                ),
            ),
            (
                "c",
                format!(
                    r#"{{"orgId":"org_b{one}","stripeCustomerId":"cus_B{one}","stripeSubscriptionId":"sub_B{one}","planCode":"{}"}}"#,
                    self.plan_of(1)
                ),
            ),
            (
                "d",
                format!(
                    r#"{{"orgId":"org_b{cap}","stripeCustomerId":"cus_B{cap}","stripeSubscriptionId":"sub_B{cap}","planCode":"{}"}}"#,
                    self.plan_of(r.capture)
                ),
            ),
        ]
    }

    pub(super) fn capture(&mut self, emulator: &Emulator) -> anyhow::Result<()> {
        say("capturing the SQL of each path (one request each, log_statement = all)");
        let service =
            self.start_service("service-capture", emulator.addr, UNLIMITED_CALLS_PER_MINUTE)?;
        // Open the pool's connections first, so the capture shows the steady state.
        for (_, body) in self.bodies().iter().take(3) {
            post(service.addr, body)?;
        }
        let pg = self.pg()?;
        let log_path = pg.log_path();
        if log_path.is_some() {
            pg.log_all_statements(true)?;
        }
        let mut expected = Vec::new();
        for (path, body) in self.bodies() {
            self.pg()?.query(&format!("SELECT 'bench-mark:{path}'"))?;
            let answer = post(service.addr, &body)?;
            // The debug-log row is written just after the answer (ADR 0006): let it land
            // before the end mark.
            std::thread::sleep(Duration::from_millis(100));
            self.pg()?
                .query(&format!("SELECT 'bench-mark:end-{path}'"))?;
            if path == "a" {
                self.bad_request_answer = Some(answer.text());
            }
            expected.push((path, answer.status, answer.text()));
        }
        if log_path.is_some() {
            self.pg()?.log_all_statements(false)?;
        }
        service.daemon.stop(Duration::from_secs(15));
        for (path, status, text) in &expected {
            let want = match *path {
                "a" => 400,
                "b" => 404,
                _ => 200,
            };
            if *status != want {
                bail!("the {path} request answered {status}, not {want}: {text}");
            }
        }
        if let Some(log_path) = log_path {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            for (path, _, _) in &expected {
                let statements = pg::statements_between(
                    &log,
                    &format!("bench-mark:{path}'"),
                    &format!("bench-mark:end-{path}'"),
                )
                .into_iter()
                .filter(|s| !s.starts_with("SELECT 'bench-mark"))
                .collect::<Vec<_>>();
                self.report.captured.push(((*path).to_owned(), statements));
            }
            self.check_scripts();
            std::fs::write(
                self.work.join("captured-sql.json"),
                serde_json::to_string_pretty(&json!(
                    self.report
                        .captured
                        .iter()
                        .map(|(p, s)| json!({"path": p, "statements": s}))
                        .collect::<Vec<_>>()
                ))?,
            )?;
        }
        Ok(())
    }

    /// Compares the captured SQL of paths b, c and d with the pgbench scripts, statement
    /// by statement (shapes: parameters, literals and NULLs aside), and says where they differ.
    fn check_scripts(&mut self) {
        let mut results = serde_json::Map::new();
        for (path, script, with_batch) in [
            ("b", "lookup_unknown_org.sql", true),
            ("c", "lookup_replay.sql", true),
            ("d", "first_time.sql", false),
        ] {
            let Some((_, captured)) = self.report.captured.iter().find(|(p, _)| p == path) else {
                continue;
            };
            let mut service: Vec<String> = captured
                .iter()
                .map(|sql| pg::kind(sql))
                .filter(|k| !k.starts_with("SET "))
                .collect();
            let text = std::fs::read_to_string(self.config.root.join("bench/sql").join(script))
                .unwrap_or_default();
            let mut bench: Vec<String> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('\\') && !l.starts_with("--"))
                .map(|l| pg::kind(l.trim_end_matches("\\gset").trim()))
                .collect();
            if with_batch {
                bench.push(pg::kind(
                    "INSERT INTO \"debug_logs\" (\"request_id\") VALUES ($1)",
                ));
            }
            service.sort();
            bench.sort();
            let only_service: Vec<&String> =
                service.iter().filter(|k| !bench.contains(k)).collect();
            let only_bench: Vec<&String> = bench.iter().filter(|k| !service.contains(k)).collect();
            let same = service == bench;
            if !same {
                self.report.notes.push(format!(
                    "The pgbench script of scenario {path} ({script}) no longer matches the SQL captured from the service: {} statements captured, {} in the script; only in the service: {only_service:?}; only in the script: {only_bench:?}. Update bench/sql/{script}.",
                    service.len(),
                    bench.len()
                ));
            }
            results.insert(
                path.to_owned(),
                json!({ "script": script, "matches": same, "capturedStatements": service.len(), "scriptStatements": bench.len() }),
            );
        }
        self.report
            .details
            .insert("scriptCheck".into(), Value::Object(results));
    }
}
