//! The Stigg calls that provision a subscription (its customer first, unless recorded), each
//! recorded as it succeeds. Shared by the provisioning route and by the lifecycle sync's first
//! move; both call it while holding the subscription's lease.

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use crate::model::{
    Lease, Organization, Plan, ProvisionedCustomer, ProvisionedSubscription, StripeCustomerId,
    StripeSubscriptionId, TenantId,
};
use crate::ports::{
    CallContext, Clock, CustomerProvisioning, KeyRenewal, ProvisioningStore, RepoError, StiggError,
    StiggGateway, SubscriptionProvisioning, TrialConfiguration,
};

/// What to provision, fully decided by the caller.
pub(crate) struct NewSubscription<'a> {
    pub org: &'a Organization,
    /// The Stripe customer that bills the organization: the Stigg customer's billing id.
    pub billing_id: &'a StripeCustomerId,
    pub subscription_id: &'a StripeSubscriptionId,
    pub plan: &'a Plan,
    /// `Some` when the subscription starts in trial; the end, when known.
    pub trial: Option<Option<DateTime<Utc>>>,
    pub tenant_id: Option<TenantId>,
    /// The lease held; its holder id renews idempotency keys when Stigg lost the customer.
    pub lease: &'a Lease,
    pub call: &'a CallContext,
}

/// The ids Stigg answered with.
pub(crate) struct ProvisionedIds {
    pub stigg_customer_id: String,
    pub stigg_subscription_id: String,
}

/// Why the steps stopped.
#[derive(Debug)]
pub(crate) enum StepError {
    Stigg(StiggError),
    Store(RepoError),
}

impl From<StiggError> for StepError {
    fn from(error: StiggError) -> Self {
        Self::Stigg(error)
    }
}

impl From<RepoError> for StepError {
    fn from(error: RepoError) -> Self {
        Self::Store(error)
    }
}

/// The ports the steps use.
pub(crate) struct ProvisioningSteps<'a> {
    pub store: &'a dyn ProvisioningStore,
    pub stigg: &'a dyn StiggGateway,
    pub clock: &'a dyn Clock,
}

impl ProvisioningSteps<'_> {
    /// Creates the customer unless `customer` records it for this billing id, then the
    /// subscription; records each.
    pub async fn provision(
        &self,
        new: &NewSubscription<'_>,
        customer: Option<ProvisionedCustomer>,
    ) -> Result<ProvisionedIds, StepError> {
        // A recorded customer counts only for the billing id asked for: after the
        // organization's Stripe customer changed, the customer step runs again, so the new
        // subscription never attaches silently to a customer billed as the old one.
        let recorded = customer
            .filter(|c| &c.billing_id == new.billing_id)
            .map(|c| c.stigg_customer_id);
        let mut stigg_customer_id = match recorded {
            Some(id) => id,
            None => self.provision_customer(new, None).await?,
        };

        let mut wanted = SubscriptionProvisioning {
            subscription_id: new.subscription_id.clone(),
            customer_id: new.org.id.clone(),
            plan_code: new.plan.code.clone(),
            stigg_plan_id: new.plan.stigg_plan_id.clone(),
            billing_period: new.plan.billing_period,
            trial: new.trial.map(|ends_at| TrialConfiguration { ends_at }),
            renewal: None,
        };
        let created = match self.stigg.provision_subscription(&wanted, new.call).await {
            // The customer we rely on is gone from Stigg (deleted, archived, or a 2xx that
            // never created it). Retrying on the record would fail forever: forget it and
            // create the customer again, once per attempt. Both calls go out under keys of
            // this attempt, since Stigg replays what it answered to the old ones.
            Err(StiggError::CustomerNotFound { .. }) => {
                warn!(org_id = %new.org.id, "the Stigg customer is missing; provisioning it again");
                self.store.forget_customer(&new.org.id).await?;
                let renewal = KeyRenewal(new.lease.holder.clone());
                stigg_customer_id = self.provision_customer(new, Some(renewal.clone())).await?;
                wanted.renewal = Some(renewal);
                self.stigg.provision_subscription(&wanted, new.call).await?
            }
            other => other?,
        };
        info!(
            org_id = %new.org.id,
            stigg_subscription_id = %created.id,
            "subscription provisioned in Stigg"
        );
        self.store
            .record_subscription(&ProvisionedSubscription {
                org_id: new.org.id.clone(),
                stripe_subscription_id: new.subscription_id.clone(),
                stigg_customer_id: stigg_customer_id.clone(),
                stigg_subscription_id: created.id.clone(),
                provisioned_at: self.clock.now(),
            })
            .await?;
        Ok(ProvisionedIds {
            stigg_customer_id,
            stigg_subscription_id: created.id,
        })
    }

    /// Creates the organization's customer in Stigg and records it; its Stigg id.
    async fn provision_customer(
        &self,
        new: &NewSubscription<'_>,
        renewal: Option<KeyRenewal>,
    ) -> Result<String, StepError> {
        let org = new.org;
        let created = self
            .stigg
            .provision_customer(
                &CustomerProvisioning {
                    customer_id: org.id.clone(),
                    name: org.name.clone(),
                    email: org.email.clone(),
                    billing_id: new.billing_id.clone(),
                    tenant_id: new.tenant_id.clone(),
                    renewal,
                },
                new.call,
            )
            .await?;
        info!(org_id = %org.id, stigg_customer_id = %created.id, "customer provisioned in Stigg");
        self.store
            .record_customer(&ProvisionedCustomer {
                org_id: org.id.clone(),
                stigg_customer_id: created.id.clone(),
                billing_id: new.billing_id.clone(),
                provisioned_at: self.clock.now(),
            })
            .await?;
        Ok(created.id)
    }
}
