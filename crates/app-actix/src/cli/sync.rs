//! `onboarding sync`: re-read Stripe subscriptions and apply the moves now, as for an event;
//! or handle the failed events again (`--retry-failed`, after a fix), with a progress bar on a
//! terminal and a summary.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use onboarding_domain::model::{EventSubject, StripeEventId, StripeSubscriptionId};
use onboarding_domain::ports::{EventRecord, StripeInbox};
use onboarding_domain::use_cases::handle_stripe_events::{Handled, Outcome};
use serde_json::{Value, json};

use crate::config::{Settings, StiggUse, StripeUse};
use crate::startup::{Services, StripeSync};

/// Failed events read per page.
const PAGE: u32 = 200;

#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// Stripe subscriptions (`sub_…`) to sync now.
    #[arg(
        value_name = "SUB_ID",
        required_unless_present = "retry_failed",
        conflicts_with = "retry_failed"
    )]
    pub subscriptions: Vec<String>,
    /// Handle every `failed` event again.
    #[arg(long)]
    pub retry_failed: bool,
    /// With --retry-failed: list the failed events, change nothing.
    #[arg(long, requires = "retry_failed")]
    pub dry_run: bool,
    /// Run against the bundled in-memory Stripe and Stigg emulators (for trying the command).
    #[arg(long)]
    pub emulator: bool,
}

pub async fn run(settings: &Settings, args: SyncArgs) -> anyhow::Result<ExitCode> {
    let stigg_use = StiggUse::OneShot {
        command: "sync",
        emulator: args.emulator,
    };
    let services = Services::build(settings, stigg_use, None).await?;
    let endpoint = settings.stripe_endpoint(StripeUse::OneShot {
        command: "sync",
        emulator: args.emulator,
    })?;
    let sync = StripeSync::build(&services, settings, endpoint)
        .await?
        .context("the Stripe sync is not configured")?;
    let result = if args.retry_failed {
        retry_failed(&services, &sync, args.dry_run).await
    } else {
        sync_now(&sync, &args.subscriptions).await
    };
    sync.shutdown().await;
    services.shutdown().await;
    result
}

fn print(value: &Value) -> anyhow::Result<()> {
    writeln!(std::io::stdout().lock(), "{value}")?;
    Ok(())
}

/// One JSON line per subscription; non-zero when any did not end applied.
async fn sync_now(sync: &StripeSync, ids: &[String]) -> anyhow::Result<ExitCode> {
    let mut all_applied = true;
    for raw in ids {
        let line = match StripeSubscriptionId::parse(raw) {
            Err(error) => {
                json!({"stripeSubscriptionId": raw, "status": "invalid", "error": error.to_string()})
            }
            Ok(id) => run_one(sync, &EventSubject::Subscription(id)).await?,
        };
        all_applied &= line["status"] == "applied";
        print(&line)?;
    }
    Ok(if all_applied {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn run_one(sync: &StripeSync, subject: &EventSubject) -> anyhow::Result<Value> {
    let handled = sync
        .events
        .sync_now(subject, crate::startup::stripe_sync::SYNC_DEADLINE)
        .await?;
    let key = match subject {
        EventSubject::Subscription(_) => "stripeSubscriptionId",
        EventSubject::Customer(_) => "stripeCustomerId",
    };
    Ok(match handled {
        Handled::Busy => json!({
            key: subject.object_id(),
            "status": "busy",
            "error": "another holder works on it; retry later",
        }),
        Handled::Ran(report) => {
            let (status, error) = match &report.outcome {
                Outcome::Applied => ("applied", None),
                Outcome::Failed(error) => ("failed", Some(error.clone())),
                Outcome::Retrying { error, .. } => ("failed", Some(error.clone())),
            };
            json!({
                key: subject.object_id(),
                "status": status,
                "events": report.events.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
                "moves": report.moves.iter().map(|m| json!({"call": m.call, "stiggId": m.stigg_id})).collect::<Vec<_>>(),
                "error": error,
            })
        }
    })
}

async fn all_failed(inbox: &dyn StripeInbox) -> anyhow::Result<Vec<EventRecord>> {
    let mut events = Vec::new();
    let mut after: Option<StripeEventId> = None;
    loop {
        let page = inbox.failed(after.as_ref(), PAGE).await?;
        let full = page.len() == PAGE as usize;
        after = page.last().map(|e| e.id.clone());
        events.extend(page);
        if !full {
            return Ok(events);
        }
    }
}

async fn retry_failed(
    services: &Services,
    sync: &StripeSync,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    let inbox = services.db.clone();
    let failed = all_failed(&inbox).await?;
    if dry_run {
        for event in &failed {
            print(&json!({
                "eventId": event.id.as_str(),
                "type": event.event_type,
                "objectId": event.object_id,
                "attempts": event.attempts,
                "error": event.error,
            }))?;
        }
        print(&json!({"failed": failed.len(), "dryRun": true}))?;
        return Ok(ExitCode::SUCCESS);
    }
    // An event whose object id names no subject failed on arrival: handling it again
    // cannot help, and made pending it would wait for ever.
    let failed: Vec<EventRecord> = failed
        .into_iter()
        .filter(|e| EventSubject::from_object_id(&e.object_id).is_some())
        .collect();
    let ids: Vec<StripeEventId> = failed.iter().map(|e| e.id.clone()).collect();
    inbox.requeue(&ids, chrono::Utc::now()).await?;
    let subjects: BTreeSet<String> = failed.iter().map(|e| e.object_id.clone()).collect();
    // Drawn on standard error only when it is a terminal.
    let bar = ProgressBar::new(subjects.len() as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} subjects {elapsed_precise} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (mut applied, mut still_failed, mut skipped) = (0_usize, 0_usize, 0_usize);
    for object_id in &subjects {
        bar.set_message(object_id.clone());
        let Some(subject) = EventSubject::from_object_id(object_id) else {
            skipped += 1;
            bar.inc(1);
            continue;
        };
        let line = run_one(sync, &subject).await?;
        if line["status"] == "applied" {
            applied += 1;
        } else {
            still_failed += 1;
        }
        bar.suspend(|| print(&line))?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    print(&json!({
        "retriedEvents": failed.len(),
        "subjects": subjects.len(),
        "applied": applied,
        "failed": still_failed,
        "skipped": skipped,
    }))?;
    Ok(if still_failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
