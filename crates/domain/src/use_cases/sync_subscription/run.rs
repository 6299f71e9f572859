//! Syncing one subject with its I/O: re-read it from Stripe, decide, apply the moves one by
//! one, record each. The caller holds the subject's lease for the whole run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::{SuspendedPolicy, SyncError, moves, target};
use crate::model::{
    AppliedState, AppliedStatus, Change, CreationKind, Lease, Move, MoveRecord, Organization,
    PlanCatalog, ProvisioningState, StripeEventId, StripeSubscriptionId, Subscription,
};
use crate::ports::{
    CallContext, Clock, Intent, LeaseStore, OrgRepo, ProvisioningStore, StiggError, StiggGateway,
    StiggLifecycle, StripeReader, SubscriptionRepo, SyncStateStore,
};
use crate::use_cases::OperationContext;

/// The ports a sync uses.
#[derive(Clone)]
pub struct SyncPorts {
    pub orgs: Arc<dyn OrgRepo>,
    pub subscriptions: Arc<dyn SubscriptionRepo>,
    pub provisioning: Arc<dyn ProvisioningStore>,
    pub states: Arc<dyn SyncStateStore>,
    pub leases: Arc<dyn LeaseStore>,
    pub stripe: Arc<dyn StripeReader>,
    pub stigg: Arc<dyn StiggGateway>,
    pub lifecycle: Arc<dyn StiggLifecycle>,
    pub clock: Arc<dyn Clock>,
}

/// How the sync decides and how long one run may take.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    pub catalog: Arc<PlanCatalog>,
    pub suspended: SuspendedPolicy,
    /// One run: the re-read and every move.
    pub deadline: Duration,
}

/// What a run did: the Stigg calls it made, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Synced {
    pub moves: Vec<MoveRecord>,
}

/// A run that stopped: why, the calls made before, and the call that failed, if one did.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct SyncFailed {
    pub error: SyncError,
    pub moves: Vec<MoveRecord>,
    pub failed_call: Option<&'static str>,
}

impl From<SyncError> for SyncFailed {
    fn from(error: SyncError) -> Self {
        Self {
            error,
            moves: Vec::new(),
            failed_call: None,
        }
    }
}

/// Make Stigg follow one Stripe subscription or customer.
#[derive(Clone)]
pub struct SyncSubscription {
    ports: SyncPorts,
    settings: SyncSettings,
}

mod apply;
mod customer;

/// One run under a lease.
struct Run<'a> {
    lease: &'a Lease,
    call: CallContext,
    moves: Vec<MoveRecord>,
}

impl SyncSubscription {
    pub fn new(ports: SyncPorts, settings: SyncSettings) -> Self {
        Self { ports, settings }
    }

    /// How long a run's lease must protect it: past its deadline, as provisioning's.
    pub fn lease_ttl(&self) -> Duration {
        self.settings.deadline
            + crate::use_cases::provision_subscription::ProvisioningPolicy::LEASE_MARGIN
    }

    /// Syncs the subscription, whose lease the caller holds. `event` is the latest event
    /// this run answers, for the record.
    pub async fn subscription(
        &self,
        lease: &Lease,
        id: &StripeSubscriptionId,
        event: Option<&StripeEventId>,
        ctx: &OperationContext,
    ) -> Result<Synced, SyncFailed> {
        let row = self
            .ports
            .subscriptions
            .find_by_stripe_id(id)
            .await
            .map_err(SyncError::from)?
            .ok_or(SyncError::UnknownSubscription)?;
        let org = self.organization(&row).await?;
        let mut run = self.start(lease, ctx);
        let outcome = self.subscription_moves(&mut run, &row, &org).await;
        let error = outcome.as_ref().err().map(|(error, _)| error.to_string());
        let now = self.ports.clock.now();
        if let Err(store) = self
            .ports
            .states
            .record_outcome(id, &org.id, event, error.as_deref(), now)
            .await
        {
            warn!(subscription = %id, error = %store, "could not record the sync's outcome");
        }
        match outcome {
            Ok(()) => Ok(Synced { moves: run.moves }),
            Err((error, failed_call)) => Err(SyncFailed {
                error,
                moves: run.moves,
                failed_call,
            }),
        }
    }

    /// A run that stops after the calls it already made.
    fn failed_after(
        &self,
        run: &Run<'_>,
        error: SyncError,
        failed_call: Option<&'static str>,
    ) -> SyncFailed {
        SyncFailed {
            error,
            moves: run.moves.clone(),
            failed_call,
        }
    }

    fn start<'a>(&self, lease: &'a Lease, ctx: &OperationContext) -> Run<'a> {
        Run {
            lease,
            call: CallContext {
                correlation_id: ctx.correlation_id.clone(),
                deadline: self.deadline(),
            },
            moves: Vec::new(),
        }
    }

    fn deadline(&self) -> Instant {
        self.ports.clock.monotonic() + self.settings.deadline
    }

    async fn organization(&self, row: &Subscription) -> Result<Organization, SyncError> {
        let org_id = row.organization_id.valid().ok_or_else(|| {
            SyncError::Refused(format!(
                "the subscription's stored organization id '{}' is not valid",
                row.organization_id.raw()
            ))
        })?;
        self.ports
            .orgs
            .find(org_id)
            .await?
            .ok_or_else(|| SyncError::Refused(format!("organization '{org_id}' not found")))
    }

    /// Finishes a move a previous holder sent, re-reads Stripe, then applies the difference.
    async fn subscription_moves(
        &self,
        run: &mut Run<'_>,
        row: &Subscription,
        org: &Organization,
    ) -> Result<(), (SyncError, Option<&'static str>)> {
        let id = &row.stripe_subscription_id;
        let record = self.ports.states.load(id).await.map_err(no_call)?;
        let (mut applied, intent) = match record {
            Some(record) => (record.applied, record.intent),
            None => (None, None),
        };
        if applied.is_none() {
            applied = self.provisioned_state(org, row).await.map_err(no_call)?;
        }

        let stripe = self
            .ports
            .stripe
            .subscription(id, &run.call)
            .await
            .map_err(no_call)?
            .ok_or_else(|| {
                no_call(SyncError::Refused(format!(
                    "Stripe has no subscription '{id}'"
                )))
            })?;
        let billed_as = org.stripe_customer_id.as_ref().and_then(|c| c.valid());
        if billed_as != Some(&stripe.customer) {
            return Err(no_call(SyncError::Refused(format!(
                "Stripe subscription '{id}' belongs to customer '{}', not to the Stripe customer of organization '{}'",
                stripe.customer, org.id
            ))));
        }
        // A move a previous holder sent and never saw answered is finished first, under its
        // own key: Stigg replays it if it was done, does it otherwise. Only then is the
        // record what Stigg holds, and the difference to Stripe can be decided from it.
        if let Some(intent) = intent {
            info!(subscription = %id, key = %intent.idempotency_key, "finishing a move sent before");
            self.renew(run).await.map_err(no_call)?;
            applied = Some(self.send(run, row, org, applied.as_ref(), &intent).await?);
        }
        let target = target(&stripe, &self.settings.catalog, self.settings.suspended)
            .map_err(|e| no_call(SyncError::Decision(e)))?;
        for action in moves(applied.as_ref(), &target) {
            let intent = Intent {
                idempotency_key: action.idempotency_key(id, applied.as_ref()),
                action,
            };
            self.renew(run).await.map_err(no_call)?;
            self.ports
                .states
                .record_intent(id, &org.id, &intent, self.ports.clock.now())
                .await
                .map_err(no_call)?;
            applied = Some(self.send(run, row, org, applied.as_ref(), &intent).await?);
        }
        Ok(())
    }

    /// Sends a recorded move. An answer that says for sure what Stigg did (a refusal, or a
    /// call that never left) clears the intent: replaying it could only fail the same way,
    /// or act after Stripe moved on. An unknown outcome (Stigg unavailable, a crash, a
    /// failed write of the result) keeps it, to be sent again under the same key.
    async fn send(
        &self,
        run: &mut Run<'_>,
        row: &Subscription,
        org: &Organization,
        previous: Option<&AppliedState>,
        intent: &Intent,
    ) -> Result<AppliedState, (SyncError, Option<&'static str>)> {
        let sent = self.apply(run, row, org, previous, intent).await;
        if let Err((error, Some(_))) = &sent
            && outcome_is_known(error)
            && let Err(store) = self
                .ports
                .states
                .clear_intent(&row.stripe_subscription_id)
                .await
        {
            warn!(subscription = %row.stripe_subscription_id, error = %store, "could not clear the refused move");
        }
        sent
    }

    /// What provisioning created, for a subscription the sync never moved.
    async fn provisioned_state(
        &self,
        org: &Organization,
        row: &Subscription,
    ) -> Result<Option<AppliedState>, SyncError> {
        let state = self
            .ports
            .provisioning
            .load(&org.id, &row.stripe_subscription_id)
            .await?;
        let ProvisioningState::Done(done) = state else {
            return Ok(None);
        };
        // Provisioning only runs for a stored plan code that is valid.
        let plan = row.plan_code.valid().cloned().ok_or_else(|| {
            SyncError::Refused(format!(
                "the subscription's stored plan code '{}' is not valid",
                row.plan_code.raw()
            ))
        })?;
        Ok(Some(AppliedState {
            stigg_subscription_id: done.stigg_subscription_id,
            plan,
            status: AppliedStatus::Active,
            trial_end: row.trial_ends_at.filter(|_| row.is_trialing()),
            cancellation_date: None,
            moves_applied: 0,
        }))
    }

    /// Extends the lease before a mutation; a lost lease stops the run before it changes
    /// anything more.
    async fn renew(&self, run: &Run<'_>) -> Result<(), SyncError> {
        self.ports
            .leases
            .renew(run.lease, self.ports.clock.now(), self.lease_ttl())
            .await?
            .map(|_| ())
            .ok_or(SyncError::LeaseLost)
    }

    fn record(&self, call: &'static str, stigg_id: &str) -> MoveRecord {
        MoveRecord {
            call: call.to_owned(),
            stigg_id: stigg_id.to_owned(),
            at: self.ports.clock.now(),
        }
    }
}

const ARCHIVE: &str = "archive_customer";

/// The name a move's call is recorded and counted under.
pub fn call_name(action: &Move) -> &'static str {
    match action {
        Move::Create(creation) if creation.kind == CreationKind::Provision => "provision",
        Move::Create(_) => "create_subscription",
        Move::Change(Change::PatchTrialEnd(_) | Change::RemoveCancellation) => "patch_subscription",
        Move::Change(Change::CancelAt(_) | Change::CancelNow { .. }) => "cancel_subscription",
        Move::ArchiveCustomer { .. } => ARCHIVE,
    }
}

/// Whether a failed call's outcome in Stigg is certain: refused, or never sent.
fn outcome_is_known(error: &SyncError) -> bool {
    match error {
        SyncError::Stigg(StiggError::Unavailable { .. }) => false,
        SyncError::Stigg(_) | SyncError::Refused(_) | SyncError::Decision(_) => true,
        _ => false,
    }
}

fn no_call(error: impl Into<SyncError>) -> (SyncError, Option<&'static str>) {
    (error.into(), None)
}
