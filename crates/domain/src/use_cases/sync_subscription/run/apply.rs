//! Sending one recorded move to Stigg, and recording the state it leads to.

use tracing::{info, warn};

use super::{Run, SyncError, SyncSubscription, call_name};
use crate::model::{
    AppliedState, Change, CreationKind, Move, Organization, ProvisioningState, Subscription,
};
use crate::ports::{
    CallContext, Cancellation, Intent, StiggError, SubscriptionCreation, SubscriptionPatch,
};
use crate::use_cases::stigg_provisioning::{NewSubscription, ProvisioningSteps, StepError};

impl SyncSubscription {
    /// Sends one recorded move and records the state it leads to.
    pub(super) async fn apply(
        &self,
        run: &mut Run<'_>,
        row: &Subscription,
        org: &Organization,
        previous: Option<&AppliedState>,
        intent: &Intent,
    ) -> Result<AppliedState, (SyncError, Option<&'static str>)> {
        let id = &row.stripe_subscription_id;
        let key = intent.idempotency_key.as_str();
        let call = call_name(&intent.action);
        let failed = |error: SyncError| (error, Some(call));
        let (next, stigg_id) = match &intent.action {
            Move::Create(creation) if creation.kind == CreationKind::Provision => {
                let created = self
                    .provision(run, row, org, creation)
                    .await
                    .map_err(failed)?;
                let next = AppliedState::created(previous, creation, created);
                let stigg_id = next.stigg_subscription_id.clone();
                (next, stigg_id)
            }
            Move::Create(creation) => {
                let wanted = SubscriptionCreation {
                    customer_id: org.id.clone(),
                    stripe_subscription_id: id.clone(),
                    plan: creation.plan.clone(),
                    trial_end: creation.trial_end,
                };
                let created = self
                    .ports
                    .lifecycle
                    .create_subscription(&wanted, key, &run.call)
                    .await
                    .map_err(|e| failed(e.into()))?;
                let next = AppliedState::created(previous, creation, created.id.clone());
                (next, created.id)
            }
            Move::Change(change) => {
                let current = previous.ok_or_else(|| {
                    failed(SyncError::Refused(
                        "a change was decided for a subscription never created in Stigg".into(),
                    ))
                })?;
                self.change(&current.stigg_subscription_id, change, key, &run.call)
                    .await
                    .map_err(|e| failed(e.into()))?;
                (
                    current.changed(change),
                    current.stigg_subscription_id.clone(),
                )
            }
            Move::ArchiveCustomer { .. } => {
                return Err(failed(SyncError::Refused(
                    "archiving is a customer's move, not a subscription's".into(),
                )));
            }
        };
        info!(subscription = %id, call, stigg_id = %stigg_id, "Stigg moved");
        run.moves.push(self.record(call, &stigg_id));
        self.ports
            .states
            .record_applied(id, &org.id, org.id.as_str(), &next, self.ports.clock.now())
            .await
            .map_err(|e| (e.into(), None))?;
        Ok(next)
    }

    /// The provisioning of a subscription never provisioned, shared with the route; the id
    /// of the Stigg subscription.
    async fn provision(
        &self,
        run: &Run<'_>,
        row: &Subscription,
        org: &Organization,
        creation: &crate::model::Creation,
    ) -> Result<String, SyncError> {
        let id = &row.stripe_subscription_id;
        let store = self.ports.provisioning.as_ref();
        let customer = match store.load(&org.id, id).await? {
            ProvisioningState::Done(done) => return Ok(done.stigg_subscription_id),
            ProvisioningState::Pending { customer } => customer,
        };
        // Refused only once provisioned, which the load above would have seen; read again
        // rather than provision twice.
        if !store
            .start_attempt(&org.id, id, self.ports.clock.now())
            .await?
            && let ProvisioningState::Done(done) = store.load(&org.id, id).await?
        {
            return Ok(done.stigg_subscription_id);
        }
        let billing_id = org
            .stripe_customer_id
            .as_ref()
            .and_then(|c| c.valid())
            .ok_or_else(|| {
                SyncError::Refused(format!(
                    "organization '{}' has no valid Stripe customer",
                    org.id
                ))
            })?;
        let steps = ProvisioningSteps {
            store,
            stigg: self.ports.stigg.as_ref(),
            clock: self.ports.clock.as_ref(),
        };
        let new = NewSubscription {
            org,
            billing_id,
            subscription_id: id,
            plan: &creation.plan,
            trial: creation.trial_end.map(Some),
            tenant_id: org.tenant_id.as_ref().and_then(|t| t.valid()).cloned(),
            lease: run.lease,
            call: &run.call,
        };
        match steps.provision(&new, customer).await {
            Ok(ids) => Ok(ids.stigg_subscription_id),
            Err(error) => {
                let error = match error {
                    StepError::Stigg(error) => SyncError::from(error),
                    StepError::Store(error) => SyncError::from(error),
                };
                if let Err(store_error) = store.record_failure(id, &error.to_string()).await {
                    warn!(subscription = %id, error = %store_error, "could not record the provisioning failure");
                }
                Err(error)
            }
        }
    }

    async fn change(
        &self,
        stigg_subscription_id: &str,
        change: &Change,
        key: &str,
        call: &CallContext,
    ) -> Result<(), StiggError> {
        let lifecycle = self.ports.lifecycle.as_ref();
        match *change {
            Change::PatchTrialEnd(end) => {
                lifecycle
                    .patch_subscription(
                        stigg_subscription_id,
                        SubscriptionPatch::TrialEnd(end),
                        key,
                        call,
                    )
                    .await
            }
            Change::RemoveCancellation => {
                lifecycle
                    .patch_subscription(
                        stigg_subscription_id,
                        SubscriptionPatch::RemoveCancellation,
                        key,
                        call,
                    )
                    .await
            }
            Change::CancelAt(date) => {
                lifecycle
                    .cancel_subscription(
                        stigg_subscription_id,
                        Cancellation::OnDate(date),
                        key,
                        call,
                    )
                    .await
            }
            Change::CancelNow {
                revoke_entitlements,
            } => {
                lifecycle
                    .cancel_subscription(
                        stigg_subscription_id,
                        Cancellation::Immediately {
                            revoke_entitlements,
                        },
                        key,
                        call,
                    )
                    .await
            }
        }
    }
}
