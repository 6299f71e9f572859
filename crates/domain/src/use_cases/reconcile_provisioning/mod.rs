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

#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroUsize;
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use futures::future::{self, Either};
use futures::lock::{Mutex as AsyncMutex, OwnedMutexGuard};
use futures::{Stream, StreamExt, stream};
use tracing::{debug, info, warn};

use super::provision_subscription::{
    OperationContext, ProvisionError, ProvisionRequest, ProvisionSubscription,
};
use crate::model::{
    CorrelationId, MAX_TRACE_ID_LEN, OrgId, Organization, PlanCatalog, PlanCode, StripeCustomerId,
    StripeSubscriptionId, Subscription, TenantId,
};
use crate::ports::{Clock, PendingProvisioning, ProvisioningBacklog, StiggError};
use crate::text::truncate_chars;

/// Longest stored value quoted back in a failure reason.
const MAX_QUOTED_CHARS: usize = 64;

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

/// How one subscription ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Provisioned in Stigg by this run.
    Provisioned {
        stigg_customer_id: String,
        stigg_subscription_id: String,
    },
    /// Finished by someone else between the listing and our attempt; Stigg was not called.
    AlreadyProvisioned,
    /// Dry run: it would be provisioned.
    WouldProvision,
    /// Not provisioned, and why. It stays pending for the next run.
    Failed { reason: String },
    /// The stop came before the item's next Stigg call (while it waited for a rate-limit
    /// turn or for its organization's turn); it stays pending for the next run.
    Interrupted,
    /// Its status is not provisioned (it changed after the backlog was read); Stigg was
    /// not called.
    Skipped { status: String },
}

impl ItemOutcome {
    /// A label for logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Provisioned { .. } => "provisioned",
            Self::AlreadyProvisioned => "already_provisioned",
            Self::WouldProvision => "would_provision",
            Self::Failed { .. } => "failed",
            Self::Interrupted => "interrupted",
            Self::Skipped { .. } => "skipped",
        }
    }
}

/// One handled subscription, as the observer and the summary see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemReport {
    /// As stored (it may break the id rule when the row is unreadable).
    pub stripe_subscription_id: String,
    /// `None` when the rows could not be read.
    pub org_id: Option<String>,
    pub plan_code: Option<String>,
    pub outcome: ItemOutcome,
}

/// A subscription that was not provisioned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedItem {
    pub stripe_subscription_id: String,
    pub org_id: Option<String>,
    pub reason: String,
}

/// A subscription a dry run would provision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedItem {
    pub stripe_subscription_id: String,
    pub org_id: String,
    pub plan_code: String,
}

/// Why a run ended before the backlog (or the limit) was exhausted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Halt {
    /// A stop was requested; the items in flight were finished.
    Stopped,
    /// The backlog could not be read; the items in flight were finished.
    StoreFailed(String),
}

impl Halt {
    /// A label for logs and metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Stopped => "stopped",
            Self::StoreFailed(_) => "store_failed",
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileSummary {
    /// Pending subscriptions when the run started (capped by the limit), when known.
    pub total: Option<u64>,
    /// Pending subscriptions when the run started, whatever the limit, when known.
    pub pending: Option<u64>,
    pub provisioned: usize,
    pub already_provisioned: usize,
    /// Dry run only, sorted by Stripe subscription id.
    pub would_provision: Vec<PlannedItem>,
    /// In the order they finished.
    pub failed: Vec<FailedItem>,
    /// Items taken but left pending because the stop came before their next Stigg call.
    pub interrupted: usize,
    /// Subscriptions not provisioned because of their status, by status (sorted): those
    /// the backlog left out and those whose status changed during the run.
    pub skipped: Vec<(String, u64)>,
    pub halt: Option<Halt>,
}

impl ReconcileSummary {
    /// Subscriptions the run took from the backlog.
    pub fn handled(&self) -> usize {
        self.provisioned
            + self.already_provisioned
            + self.would_provision.len()
            + self.failed.len()
            + self.interrupted
    }

    /// True when everything taken was provisioned (or found done, or planned) and the run
    /// was not cut short.
    pub fn is_clean(&self) -> bool {
        self.failed.is_empty() && self.interrupted == 0 && self.halt.is_none()
    }

    fn record(&mut self, report: ItemReport) {
        match report.outcome {
            ItemOutcome::Provisioned { .. } => self.provisioned += 1,
            ItemOutcome::AlreadyProvisioned => self.already_provisioned += 1,
            ItemOutcome::WouldProvision => self.would_provision.push(PlannedItem {
                stripe_subscription_id: report.stripe_subscription_id,
                org_id: report.org_id.unwrap_or_default(),
                plan_code: report.plan_code.unwrap_or_default(),
            }),
            ItemOutcome::Failed { reason } => self.failed.push(FailedItem {
                stripe_subscription_id: report.stripe_subscription_id,
                org_id: report.org_id,
                reason,
            }),
            ItemOutcome::Interrupted => self.interrupted += 1,
            ItemOutcome::Skipped { status } => self.skip(status, 1),
        }
    }

    fn skip(&mut self, status: String, count: u64) {
        match self
            .skipped
            .binary_search_by(|(s, _)| s.as_str().cmp(&status))
        {
            Ok(at) => self.skipped[at].1 += count,
            Err(at) => self.skipped.insert(at, (status, count)),
        }
    }

    /// Subscriptions skipped because of their status.
    pub fn skipped_count(&self) -> u64 {
        self.skipped.iter().map(|(_, n)| n).sum()
    }
}

/// Follows a run as it goes, e.g. to draw a progress bar. Called from the task running the
/// use case, so it must return quickly.
pub trait ReconcileObserver: Send + Sync {
    /// Once, before the first item: how many items the run expects, when known.
    fn on_total(&self, total: Option<u64>);
    /// Once per handled item, as it finishes.
    fn on_item(&self, item: &ItemReport);
}

/// An observer that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl ReconcileObserver for NoObserver {
    fn on_total(&self, _total: Option<u64>) {}
    fn on_item(&self, _item: &ItemReport) {}
}

/// The request to stop (e.g. Ctrl-C), set by the caller while the run goes on.
#[async_trait]
pub trait StopSignal: Send + Sync {
    fn is_stopped(&self) -> bool;
    /// Resolves once a stop has been requested (at once if it already was).
    async fn stopped(&self);
}

/// A stop that never comes.
#[derive(Debug, Clone, Copy, Default)]
pub struct NeverStop;

#[async_trait]
impl StopSignal for NeverStop {
    fn is_stopped(&self) -> bool {
        false
    }

    async fn stopped(&self) {
        future::pending::<()>().await;
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
type Next = Result<PendingProvisioning, Halt>;

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
        let cursor = Cursor {
            after: None,
            buffer: VecDeque::new(),
            exhausted: false,
            finished: false,
            remaining: limit,
        };
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
            plan_code: Some(subscription.plan_code),
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
                Err(
                    error @ ProvisionError::Stigg(
                        StiggError::RateLimited | StiggError::DeadlinePassed,
                    ),
                ) => error,
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

/// Subscriptions of one organization take turns. The first creates the organization's
/// customer in Stigg and records it; the next ones find it recorded. Run side by side, each
/// would create it (idempotently, but spending a call of the rate limit and of the
/// customer's own Stigg quota every time).
#[derive(Default)]
struct OrgTurns {
    /// An entry lives while someone holds or waits for the organization's turn.
    turns: Mutex<HashMap<OrgId, Arc<AsyncMutex<()>>>>,
}

/// The turn of one organization, given back on drop.
struct Turn<'a> {
    turns: &'a OrgTurns,
    org: OrgId,
    guard: Option<OwnedMutexGuard<()>>,
}

impl OrgTurns {
    async fn take(&self, org: &OrgId) -> Turn<'_> {
        let turn = Arc::clone(
            self.turns
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(org.clone())
                .or_default(),
        );
        Turn {
            turns: self,
            org: org.clone(),
            guard: Some(turn.lock_owned().await),
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        // Forget the organization once nobody holds or waits for its turn, so a long run
        // keeps no entry per organization it has seen.
        let mut turns = self
            .turns
            .turns
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if turns
            .get(&self.org)
            .is_some_and(|turn| Arc::strong_count(turn) == 1)
        {
            turns.remove(&self.org);
        }
    }
}

/// Where the backlog stream stands.
struct Cursor {
    /// Key of the last item read: the next page starts after it.
    after: Option<String>,
    buffer: VecDeque<PendingProvisioning>,
    /// The last page was short: nothing is left to read.
    exhausted: bool,
    /// The stream has ended.
    finished: bool,
    /// Items still allowed by the limit.
    remaining: Option<usize>,
}

impl Cursor {
    async fn next(
        &mut self,
        backlog: &dyn ProvisioningBacklog,
        page_size: usize,
        stop: &dyn StopSignal,
    ) -> Option<Next> {
        if self.finished {
            return None;
        }
        if self.remaining == Some(0) {
            return self.finish(None);
        }
        if self.buffer.is_empty() {
            if self.exhausted {
                return self.finish(None);
            }
            if stop.is_stopped() {
                return self.finish(Some(Halt::Stopped));
            }
            let want = self.remaining.map_or(page_size, |left| left.min(page_size));
            match backlog.pending_page(self.after.clone(), want).await {
                Ok(mut page) => {
                    self.exhausted = page.len() < want;
                    page.truncate(want);
                    if let Some(last) = page.last() {
                        self.after = Some(last.key.clone());
                    }
                    self.buffer.extend(page);
                }
                Err(error) => {
                    warn!(%error, "cannot read the pending subscriptions; finishing the items in flight");
                    return self.finish(Some(Halt::StoreFailed(error.to_string())));
                }
            }
            if self.buffer.is_empty() {
                return self.finish(None);
            }
        }
        if stop.is_stopped() {
            return self.finish(Some(Halt::Stopped));
        }
        let item = self.buffer.pop_front()?;
        if let Some(left) = &mut self.remaining {
            *left -= 1;
        }
        Some(Ok(item))
    }

    fn finish(&mut self, halt: Option<Halt>) -> Option<Next> {
        self.finished = true;
        halt.map(Err)
    }
}

/// The request and context the API would have received for this subscription, built from
/// what is stored; every problem is named in the error.
fn prepare(
    org: &Organization,
    subscription: &Subscription,
    catalog: &PlanCatalog,
    options: &ReconcileOptions,
) -> Result<(ProvisionRequest, OperationContext), String> {
    let mut problems = Vec::new();
    let stripe_customer_id = match org.stripe_customer_id.as_deref() {
        None => {
            problems.push(format!(
                "organization '{}' has no Stripe customer id",
                org.id
            ));
            None
        }
        Some(raw) => StripeCustomerId::parse(raw)
            .map_err(|e| {
                problems.push(format!(
                    "organization '{}' has an invalid Stripe customer id {}: {e}",
                    org.id,
                    quoted(raw)
                ));
            })
            .ok(),
    };
    let plan = PlanCode::parse(&subscription.plan_code)
        .ok()
        .and_then(|code| catalog.get(&code).cloned());
    if plan.is_none() {
        problems.push(format!(
            "unknown plan code {}",
            quoted(&subscription.plan_code)
        ));
    }
    let tenant_id = org
        .tenant_id
        .as_deref()
        .map(|raw| {
            TenantId::parse(raw).map_err(|e| {
                problems.push(format!(
                    "organization '{}' has an invalid tenant id {}: {e}",
                    org.id,
                    quoted(raw)
                ));
            })
        })
        .transpose()
        .ok()
        .flatten();
    let correlation_id = correlation_id(&options.run_id, &subscription.stripe_subscription_id)
        .map_err(|e| problems.push(format!("cannot form a correlation id: {e}")))
        .ok();
    match (stripe_customer_id, plan, correlation_id) {
        (Some(stripe_customer_id), Some(plan), Some(correlation_id)) if problems.is_empty() => {
            Ok((
                ProvisionRequest {
                    org_id: org.id.clone(),
                    stripe_customer_id,
                    stripe_subscription_id: subscription.stripe_subscription_id.clone(),
                    plan,
                },
                OperationContext {
                    correlation_id,
                    tenant_id,
                },
            ))
        }
        _ => Err(problems.join("; ")),
    }
}

/// `reconcile-<run id>-<subscription>`, cut to the contract's 128 characters.
fn correlation_id(
    run_id: &str,
    subscription: &StripeSubscriptionId,
) -> Result<CorrelationId, crate::model::IdError> {
    let full = format!("reconcile-{run_id}-{subscription}");
    CorrelationId::parse(truncate_chars(&full, MAX_TRACE_ID_LEN))
}

/// A stored value quoted in a reason: escaped, and cut when long.
fn quoted(raw: &str) -> String {
    let shown = truncate_chars(raw, MAX_QUOTED_CHARS);
    let more = if shown.len() < raw.len() { "…" } else { "" };
    format!("'{}{more}'", shown.escape_debug())
}
