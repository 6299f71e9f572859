//! Reconcile provisioning: provision in Stigg every subscription whose provisioning has not
//! finished (never attempted, or stopped halfway), through the same
//! [`ProvisionSubscription`] use case the API runs.
//!
//! The backlog is read page by page (keyset pagination, so a long run neither skips nor
//! repeats rows while others finish) and worked on with a bounded number of items in flight.
//! Every item ends in one [`ItemOutcome`]; stored data that cannot form a request is reported
//! as a failure with its reason, never a panic and never the end of the run. A run is
//! resumable by construction: finished subscriptions leave the backlog, so a second run
//! only sees what is still pending. A stop request ends the run after the items in flight.

mod cursor;
mod org_turns;
mod prepare;
mod report;
#[cfg(test)]
mod tests;

use cursor::Cursor;
use org_turns::OrgTurns;
use prepare::prepare;

pub use report::{
    FailedItem, Halt, ItemOutcome, ItemReport, NoObserver, PlannedItem, ReconcileObserver,
    ReconcileSummary,
};

use std::num::NonZeroUsize;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures::future::{self, Either};
use futures::{Stream, StreamExt, stream};
use tracing::{debug, info, warn};

use super::provision_subscription::{ProvisionError, ProvisionRequest, ProvisionSubscription};
use super::{OperationContext, StopSignal};
use crate::model::PlanCatalog;
use crate::ports::{Clock, PendingProvisioning, ProvisioningBacklog};

/// What one run is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileOptions {
    /// Names the run in every correlation id it sends: `reconcile-<run id>-<subscription>`.
    pub run_id: String,
    /// List what would be provisioned; call neither Stigg nor the provisioning store.
    pub dry_run: bool,
    /// Handle at most this many subscriptions.
    pub limit: Option<usize>,
    /// Subscriptions provisioned at the same time.
    pub concurrency: NonZeroUsize,
}

/// How a run reads the backlog and how patient it is with the client-side rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconcilePolicy {
    /// Subscriptions read per page of the backlog.
    pub page_size: NonZeroUsize,
    /// First pause after an item was refused by the client-side rate limit; doubles up to
    /// `max_rate_limit_pause`.
    pub rate_limit_pause: Duration,
    pub max_rate_limit_pause: Duration,
    /// How long one item may keep being refused by the rate limit before it is reported
    /// as failed.
    pub rate_limit_patience: Duration,
}

impl Default for ReconcilePolicy {
    fn default() -> Self {
        Self {
            page_size: NonZeroUsize::new(100).unwrap_or(NonZeroUsize::MIN),
            rate_limit_pause: Duration::from_millis(500),
            max_rate_limit_pause: Duration::from_secs(5),
            rate_limit_patience: Duration::from_secs(600),
        }
    }
}

/// The use case, holding its ports.
#[derive(Clone)]
pub struct ReconcileProvisioning {
    backlog: Arc<dyn ProvisioningBacklog>,
    catalog: Arc<PlanCatalog>,
    provision: ProvisionSubscription,
    clock: Arc<dyn Clock>,
    policy: ReconcilePolicy,
}

/// What the backlog stream hands to the workers: an item, or why it ends early.
pub(super) type Next = Result<PendingProvisioning, Halt>;

impl ReconcileProvisioning {
    pub fn new(
        backlog: Arc<dyn ProvisioningBacklog>,
        catalog: Arc<PlanCatalog>,
        provision: ProvisionSubscription,
        clock: Arc<dyn Clock>,
        policy: ReconcilePolicy,
    ) -> Self {
        Self {
            backlog,
            catalog,
            provision,
            clock,
            policy,
        }
    }

    /// Runs until the backlog (or the limit) is exhausted, the backlog cannot be read, or
    /// `stop` is set; in the last two cases the items in flight are finished first.
    pub async fn execute(
        &self,
        options: &ReconcileOptions,
        observer: &dyn ReconcileObserver,
        stop: &dyn StopSignal,
    ) -> ReconcileSummary {
        let pending = self.count_pending().await;
        let limit = options.limit.map(|l| u64::try_from(l).unwrap_or(u64::MAX));
        let mut summary = ReconcileSummary {
            total: pending.map(|count| limit.map_or(count, |limit| count.min(limit))),
            pending,
            ..ReconcileSummary::default()
        };
        match self.backlog.count_skipped_by_status().await {
            Ok(counts) => counts
                .into_iter()
                .for_each(|(status, n)| summary.skip(status, n)),
            Err(error) => warn!(%error, "cannot count the subscriptions skipped by status"),
        }
        observer.on_total(summary.total);
        info!(
            run_id = %options.run_id,
            total = summary.total,
            dry_run = options.dry_run,
            concurrency = options.concurrency.get(),
            "reconcile started"
        );

        let turns = OrgTurns::default();
        let turns = &turns;
        let steps = self
            .backlog_stream(options.limit, stop)
            .map(|next| async move {
                // A worker hands back the item's report, or passes on why the run ends.
                match next {
                    Ok(item) => Ok(self.handle(item, options, turns, stop).await),
                    Err(halt) => Err(halt),
                }
            })
            // Items are pulled from the backlog only when a slot is free, so after a stop
            // no new item starts while those in flight run to their end.
            .buffer_unordered(options.concurrency.get());
        let mut steps = pin!(steps);
        while let Some(step) = steps.next().await {
            match step {
                Ok(report) => {
                    observer.on_item(&report);
                    summary.record(report);
                }
                Err(halt) => summary.halt = Some(halt),
            }
        }
        summary
            .would_provision
            .sort_by(|a, b| a.stripe_subscription_id.cmp(&b.stripe_subscription_id));

        info!(
            run_id = %options.run_id,
            provisioned = summary.provisioned,
            already_provisioned = summary.already_provisioned,
            would_provision = summary.would_provision.len(),
            failed = summary.failed.len(),
            interrupted = summary.interrupted,
            held_elsewhere = summary.held_elsewhere,
            skipped = summary.skipped_count(),
            halt = summary.halt.as_ref().map(Halt::as_str),
            "reconcile finished"
        );
        summary
    }

    /// The size of the backlog; `None` when it cannot be counted (the run goes on: the
    /// listing says whether the store is really gone).
    async fn count_pending(&self) -> Option<u64> {
        match self.backlog.count_pending().await {
            Ok(count) => Some(count),
            Err(error) => {
                warn!(%error, "cannot count the pending subscriptions");
                None
            }
        }
    }

    /// The backlog, one item at a time, read page by page as the workers ask for items.
    fn backlog_stream<'a>(
        &'a self,
        limit: Option<usize>,
        stop: &'a dyn StopSignal,
    ) -> impl Stream<Item = Next> + Send + 'a {
        let cursor = Cursor::new(limit);
        stream::unfold(cursor, move |mut cursor| async move {
            let next = cursor
                .next(self.backlog.as_ref(), self.policy.page_size.get(), stop)
                .await?;
            Some((next, cursor))
        })
    }

    async fn handle(
        &self,
        item: PendingProvisioning,
        options: &ReconcileOptions,
        turns: &OrgTurns,
        stop: &dyn StopSignal,
    ) -> ItemReport {
        let (organization, subscription) = match item.rows {
            Ok(rows) => rows,
            Err(reason) => {
                return ItemReport {
                    stripe_subscription_id: item.key,
                    org_id: None,
                    plan_code: None,
                    outcome: ItemOutcome::Failed { reason },
                };
            }
        };
        let outcome = match prepare(&organization, &subscription, &self.catalog, options) {
            // The backlog lists provisionable statuses only; this one changed meanwhile.
            _ if !subscription.status.is_provisionable() => ItemOutcome::Skipped {
                status: subscription.status.as_str().to_owned(),
            },
            Err(reason) => ItemOutcome::Failed { reason },
            Ok(_) if options.dry_run => ItemOutcome::WouldProvision,
            Ok((request, ctx)) => {
                let _turn = turns.take(&organization.id).await;
                if stop.is_stopped() {
                    // It waited for its organization's turn and has not called Stigg yet.
                    ItemOutcome::Interrupted
                } else {
                    self.provision_patiently(&request, &ctx, stop).await
                }
            }
        };
        debug!(
            subscription = %subscription.stripe_subscription_id,
            org_id = %organization.id,
            outcome = outcome.as_str(),
            "reconcile item done"
        );
        ItemReport {
            stripe_subscription_id: subscription.stripe_subscription_id.as_str().to_owned(),
            org_id: Some(organization.id.as_str().to_owned()),
            plan_code: Some(subscription.plan_code.raw().to_owned()),
            outcome,
        }
    }

    /// Runs the provisioning, waiting and trying again while our own client-side rate limit
    /// keeps its Stigg call from being sent.
    ///
    /// Two answers mean that: `RateLimited` (the next token of the Stigg client's bucket
    /// comes after this provisioning's deadline, so the client refused at once), and
    /// `DeadlinePassed` (a slow store, or an earlier step, used up the
    /// deadline before the first attempt). An API caller gets them at once, but a batch
    /// should wait for its turn instead. Nothing reached Stigg, the lease was given back and
    /// a customer already created stays recorded, so trying again is safe and resumes where
    /// the attempt stopped. Anything else (a call that was sent included) is reported.
    async fn provision_patiently(
        &self,
        request: &ProvisionRequest,
        ctx: &OperationContext,
        stop: &dyn StopSignal,
    ) -> ItemOutcome {
        let started = self.clock.monotonic();
        let mut pause = self.policy.rate_limit_pause;
        loop {
            let error = match self.provision.execute(request, ctx).await {
                Ok(done) if done.already_provisioned => return ItemOutcome::AlreadyProvisioned,
                Ok(done) => {
                    return ItemOutcome::Provisioned {
                        stigg_customer_id: done.stigg_customer_id,
                        stigg_subscription_id: done.stigg_subscription_id,
                    };
                }
                Err(ProvisionError::NotProvisionable { status, .. }) => {
                    return ItemOutcome::Skipped {
                        status: status.as_str().to_owned(),
                    };
                }
                // Someone else is on it: runs side by side share the backlog out, instead of
                // queueing on each other's items.
                Err(ProvisionError::InProgress { .. }) => return ItemOutcome::HeldElsewhere,
                // Refused before it was sent: worth waiting for, up to the patience.
                Err(ProvisionError::Stigg(error)) if error.was_not_sent() => {
                    ProvisionError::Stigg(error)
                }
                Err(error) => {
                    return ItemOutcome::Failed {
                        reason: error.to_string(),
                    };
                }
            };
            let waited = self.clock.monotonic().saturating_duration_since(started);
            if waited >= self.policy.rate_limit_patience {
                return ItemOutcome::Failed {
                    reason: format!("{error} (still refused after {}s)", waited.as_secs()),
                };
            }
            if stop.is_stopped() {
                return ItemOutcome::Interrupted;
            }
            debug!(
                subscription = %request.stripe_subscription_id,
                pause_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
                "the Stigg call could not be sent in time; waiting for a turn"
            );
            match future::select(self.clock.sleep(pause), stop.stopped()).await {
                Either::Left(((), _)) => {}
                Either::Right(((), _)) => return ItemOutcome::Interrupted,
            }
            pause = (pause * 2).min(self.policy.max_rate_limit_pause);
        }
    }
}
