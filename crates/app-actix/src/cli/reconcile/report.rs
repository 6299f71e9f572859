//! A finished reconcile as printed on standard output (lines for people, or one JSON object
//! with `--json`), and the exit status it ends with.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use onboarding_domain::use_cases::reconcile_provisioning::{FailedItem, Halt, ReconcileSummary};
use serde_json::{Value, json};

use super::stop::EXIT_INTERRUPTED;

/// 0 clean, 1 when something failed, 130 when stopped (and nothing failed).
pub fn exit_code(summary: &ReconcileSummary, dry_run: bool) -> ExitCode {
    // A dry run that ran reports data problems as its findings: they are not its failure.
    let failed = (!dry_run && !summary.failed.is_empty())
        || matches!(summary.halt, Some(Halt::StoreFailed(_)));
    if failed {
        ExitCode::FAILURE
    } else if summary.halt == Some(Halt::Stopped) || summary.interrupted > 0 {
        ExitCode::from(EXIT_INTERRUPTED)
    } else {
        ExitCode::SUCCESS
    }
}

/// A finished run, as printed.
pub struct Report<'a> {
    pub run_id: &'a str,
    pub dry_run: bool,
    pub elapsed: Duration,
    pub summary: &'a ReconcileSummary,
}

impl Report<'_> {
    /// Lines for people.
    pub fn to_text(&self) -> String {
        let s = self.summary;
        let mut out = String::new();
        let pending = s
            .pending
            .map_or_else(|| "unknown".to_owned(), |p| p.to_string());
        // Say when the limit, not the backlog, decided how many were taken.
        let limited = match (s.pending, s.total) {
            (Some(pending), Some(total)) if total < pending => format!(" (limit {total})"),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{} {}: {} of {pending} pending subscriptions handled{limited} in {:.1}s",
            if self.dry_run {
                "reconcile (dry run)"
            } else {
                "reconcile"
            },
            self.run_id,
            s.handled(),
            self.elapsed.as_secs_f64(),
        );
        if self.dry_run {
            let _ = writeln!(out, "  would provision      {:>6}", s.would_provision.len());
        } else {
            let _ = writeln!(out, "  provisioned          {:>6}", s.provisioned);
            let _ = writeln!(out, "  already provisioned  {:>6}", s.already_provisioned);
        }
        let _ = writeln!(out, "  failed               {:>6}", s.failed.len());
        if s.interrupted > 0 {
            let _ = writeln!(out, "  interrupted          {:>6}", s.interrupted);
        }
        if s.held_elsewhere > 0 {
            let _ = writeln!(out, "  held elsewhere       {:>6}", s.held_elsewhere);
        }
        if !s.skipped.is_empty() {
            // Not pending: Stripe grants no access for these statuses.
            let by_status: Vec<String> = s
                .skipped
                .iter()
                .map(|(status, n)| format!("{status} {n}"))
                .collect();
            let _ = writeln!(
                out,
                "  skipped by status    {:>6}  ({})",
                s.skipped_count(),
                by_status.join(", ")
            );
        }
        match &s.halt {
            Some(Halt::Stopped) => {
                let _ = writeln!(
                    out,
                    "stopped by Ctrl-C: the rest stays pending; run the command again to resume"
                );
            }
            Some(Halt::StoreFailed(reason)) => {
                let _ = writeln!(
                    out,
                    "stopped: cannot read the pending subscriptions: {reason}"
                );
            }
            None => {}
        }
        if !s.would_provision.is_empty() {
            let _ = writeln!(out, "would provision:");
            for item in &s.would_provision {
                let _ = writeln!(
                    out,
                    "  {}  org {}  plan {}",
                    item.stripe_subscription_id, item.org_id, item.plan_code
                );
            }
        }
        if !s.failed.is_empty() {
            let _ = writeln!(out, "failed:");
            let mut failed: Vec<&FailedItem> = s.failed.iter().collect();
            failed.sort_by(|a, b| a.stripe_subscription_id.cmp(&b.stripe_subscription_id));
            for item in failed {
                let _ = writeln!(
                    out,
                    "  {}  org {}  {}",
                    item.stripe_subscription_id,
                    item.org_id.as_deref().unwrap_or("?"),
                    item.reason
                );
            }
        }
        out
    }

    /// One JSON object, for scripts (`--json`).
    pub fn to_json(&self) -> Value {
        let s = self.summary;
        let mut failed: Vec<&FailedItem> = s.failed.iter().collect();
        failed.sort_by(|a, b| a.stripe_subscription_id.cmp(&b.stripe_subscription_id));
        json!({
            "runId": self.run_id,
            "dryRun": self.dry_run,
            "total": s.total,
            "pending": s.pending,
            "handled": s.handled(),
            "provisioned": s.provisioned,
            "alreadyProvisioned": s.already_provisioned,
            "wouldProvision": s.would_provision.iter().map(|item| json!({
                "stripeSubscriptionId": item.stripe_subscription_id,
                "orgId": item.org_id,
                "planCode": item.plan_code,
            })).collect::<Vec<_>>(),
            "failed": failed.iter().map(|item| json!({
                "stripeSubscriptionId": item.stripe_subscription_id,
                "orgId": item.org_id,
                "reason": item.reason,
            })).collect::<Vec<_>>(),
            "interrupted": s.interrupted,
            "heldElsewhere": s.held_elsewhere,
            "skipped": s
                .skipped
                .iter()
                .map(|(status, n)| (status.clone(), json!(n)))
                .collect::<serde_json::Map<_, _>>(),
            "stopped": match &s.halt {
                None => Value::Null,
                Some(Halt::Stopped) => json!({ "reason": "interrupted" }),
                Some(Halt::StoreFailed(reason)) => json!({ "reason": "store", "message": reason }),
            },
            "durationMs": u64::try_from(self.elapsed.as_millis()).unwrap_or(u64::MAX),
        })
    }
}

#[cfg(test)]
mod tests {
    use onboarding_domain::use_cases::reconcile_provisioning::PlannedItem;

    use super::*;

    fn failed(id: &str, reason: &str) -> FailedItem {
        FailedItem {
            stripe_subscription_id: id.into(),
            org_id: Some("org_1".into()),
            reason: reason.into(),
        }
    }

    #[test]
    fn exit_status_says_failed_stopped_or_clean() {
        let clean = ReconcileSummary {
            provisioned: 3,
            ..ReconcileSummary::default()
        };
        assert_eq!(exit_code(&clean, false), ExitCode::SUCCESS);
        let with_failure = ReconcileSummary {
            failed: vec![failed("sub_A1", "x")],
            halt: Some(Halt::Stopped),
            ..clean.clone()
        };
        assert_eq!(exit_code(&with_failure, false), ExitCode::FAILURE);
        // A dry run reports data problems; it did its job.
        let dry_findings = ReconcileSummary {
            failed: vec![failed("sub_A1", "unknown plan code 'plan_gone'")],
            ..clean.clone()
        };
        assert_eq!(exit_code(&dry_findings, true), ExitCode::SUCCESS);
        assert_eq!(exit_code(&dry_findings, false), ExitCode::FAILURE);
        let store = ReconcileSummary {
            halt: Some(Halt::StoreFailed("down".into())),
            ..clean.clone()
        };
        assert_eq!(exit_code(&store, false), ExitCode::FAILURE);
        let stopped = ReconcileSummary {
            halt: Some(Halt::Stopped),
            ..clean.clone()
        };
        assert_eq!(exit_code(&stopped, false), ExitCode::from(EXIT_INTERRUPTED));
        let interrupted = ReconcileSummary {
            interrupted: 1,
            ..clean
        };
        assert_eq!(
            exit_code(&interrupted, false),
            ExitCode::from(EXIT_INTERRUPTED)
        );
    }

    #[test]
    fn text_summary_lists_counts_and_failures() {
        let summary = ReconcileSummary {
            total: Some(4),
            pending: Some(4),
            provisioned: 2,
            already_provisioned: 1,
            failed: vec![failed("sub_B2", "unknown plan code 'plan_gone'")],
            skipped: vec![("canceled".into(), 2), ("unpaid".into(), 1)],
            ..ReconcileSummary::default()
        };
        let report = Report {
            run_id: "r1",
            dry_run: false,
            elapsed: Duration::from_millis(1500),
            summary: &summary,
        };
        assert_eq!(
            report.to_text(),
            "reconcile r1: 4 of 4 pending subscriptions handled in 1.5s\n\
             \x20 provisioned               2\n\
             \x20 already provisioned       1\n\
             \x20 failed                    1\n\
             \x20 skipped by status         3  (canceled 2, unpaid 1)\n\
             failed:\n\
             \x20 sub_B2  org org_1  unknown plan code 'plan_gone'\n"
        );
        assert_eq!(
            report.to_json()["skipped"],
            serde_json::json!({"canceled": 2, "unpaid": 1})
        );
    }

    #[test]
    fn dry_run_and_stop_are_shown() {
        let summary = ReconcileSummary {
            total: None,
            would_provision: vec![PlannedItem {
                stripe_subscription_id: "sub_A1".into(),
                org_id: "org_1".into(),
                plan_code: "plan_starter_m".into(),
            }],
            halt: Some(Halt::Stopped),
            ..ReconcileSummary::default()
        };
        let report = Report {
            run_id: "r2",
            dry_run: true,
            elapsed: Duration::ZERO,
            summary: &summary,
        };
        let text = report.to_text();
        assert!(
            text.starts_with("reconcile (dry run) r2: 1 of unknown pending"),
            "{text}"
        );
        assert!(text.contains("  would provision           1\n"), "{text}");
        assert!(text.contains("stopped by Ctrl-C"), "{text}");
        assert!(
            text.contains("  sub_A1  org org_1  plan plan_starter_m\n"),
            "{text}"
        );
        let value = report.to_json();
        assert_eq!(value["dryRun"], true);
        assert_eq!(value["total"], Value::Null);
        assert_eq!(value["wouldProvision"][0]["planCode"], "plan_starter_m");
        assert_eq!(value["stopped"]["reason"], "interrupted");
        assert_eq!(value["handled"], 1);
    }

    #[test]
    fn a_limit_that_took_fewer_than_pending_is_said() {
        let summary = ReconcileSummary {
            total: Some(30),
            pending: Some(46),
            provisioned: 30,
            ..ReconcileSummary::default()
        };
        let report = Report {
            run_id: "r3",
            dry_run: false,
            elapsed: Duration::from_secs(2),
            summary: &summary,
        };
        assert!(
            report.to_text().starts_with(
                "reconcile r3: 30 of 46 pending subscriptions handled (limit 30) in 2.0s\n"
            ),
            "{}",
            report.to_text()
        );
        assert_eq!(report.to_json()["pending"], 46);
    }
}
