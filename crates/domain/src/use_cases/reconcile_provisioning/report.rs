//! What a run reports: each item's outcome, the summary, and the observer that follows it.

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
    /// Another holder (an API request, another `reconcile`) was provisioning it; Stigg was
    /// not called. If that holder does not finish, it stays pending for the next run.
    HeldElsewhere,
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
            Self::HeldElsewhere => "held_elsewhere",
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
    /// Items another holder was provisioning when this run came to them (runs side by side
    /// share out the backlog this way).
    pub held_elsewhere: usize,
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
            + self.held_elsewhere
    }

    /// True when everything taken was provisioned (or found done, or planned) and the run
    /// was not cut short.
    pub fn is_clean(&self) -> bool {
        self.failed.is_empty() && self.interrupted == 0 && self.halt.is_none()
    }

    pub(super) fn record(&mut self, report: ItemReport) {
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
            ItemOutcome::HeldElsewhere => self.held_elsewhere += 1,
        }
    }

    pub(super) fn skip(&mut self, status: String, count: u64) {
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
