//! Provision an organization's subscription in Stigg, after Stripe created it.
//!
//! The steps are the contract's: check the organization, its Stripe customer and the
//! subscription; answer from the record when it is already provisioned; otherwise take the
//! subscription's lease (so exactly one caller, on any instance, talks to Stigg), create the
//! customer unless recorded, create the subscription, and record each step as it succeeds so
//! a retry resumes where the last attempt stopped.

mod request;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{debug, warn};

pub use request::{ProvisionRequest, RawProvisionRequest};

use super::OperationContext;
use super::stigg_provisioning::{NewSubscription, ProvisioningSteps, StepError};
use crate::model::{
    Lease, LeaseKey, OrgId, Organization, PlanCode, ProvisionedCustomer, ProvisioningState, Stored,
    StripeCustomerId, StripeSubscriptionId, Subscription, SubscriptionStatus,
};
use crate::ports::{
    CallContext, Clock, LeaseStore, OrgRepo, ProvisioningStore, RepoError, StiggError,
    StiggGateway, SubscriptionRepo,
};

/// The answer: the subscription exists in Stigg under these ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    pub stigg_customer_id: String,
    pub stigg_subscription_id: String,
    /// True when an earlier request had already finished the work (Stigg was not called).
    pub already_provisioned: bool,
}

/// Why provisioning did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProvisionError {
    #[error("organization '{org_id}' not found")]
    OrganizationNotFound { org_id: OrgId },
    #[error("Stripe customer '{stripe_customer_id}' not found for organization '{org_id}'")]
    StripeCustomerNotFound {
        org_id: OrgId,
        stripe_customer_id: StripeCustomerId,
    },
    #[error("subscription '{stripe_subscription_id}' not found for organization '{org_id}'")]
    SubscriptionNotFound {
        org_id: OrgId,
        stripe_subscription_id: StripeSubscriptionId,
    },
    #[error("plan code '{requested}' is not the subscription's plan")]
    PlanMismatch { requested: PlanCode, actual: String },
    /// Stripe does not grant access for this status (canceled, unpaid, paused, incomplete):
    /// provisioning it would give entitlements nobody pays for.
    #[error(
        "subscription '{stripe_subscription_id}' is {status}; only trialing, active and past_due subscriptions are provisioned"
    )]
    NotProvisionable {
        stripe_subscription_id: StripeSubscriptionId,
        status: SubscriptionStatus,
    },
    #[error(
        "subscription '{stripe_subscription_id}' is being provisioned by another request{}; retry later",
        until.map(|at| format!(" (its lease ends by {})", at.format("%Y-%m-%dT%H:%M:%SZ"))).unwrap_or_default()
    )]
    InProgress {
        stripe_subscription_id: StripeSubscriptionId,
        /// When the other holder's lease ends at the latest, when the store knows.
        until: Option<DateTime<Utc>>,
    },
    #[error(transparent)]
    Stigg(#[from] StiggError),
    #[error(transparent)]
    Store(#[from] RepoError),
}

/// One provisioning under its lease: what every Stigg step needs.
#[derive(Clone, Copy)]
struct Attempt<'a> {
    request: &'a ProvisionRequest,
    ctx: &'a OperationContext,
    org: &'a Organization,
    subscription: &'a Subscription,
    lease: &'a Lease,
    call: &'a CallContext,
}

/// Time limits of one provisioning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProvisioningPolicy {
    /// The whole operation, waits for another holder included.
    pub deadline: Duration,
    /// First pause while another request holds the lease; doubles up to `max_poll_interval`.
    pub poll_interval: Duration,
    pub max_poll_interval: Duration,
    /// Whether to wait for another holder of the lease (an API caller wants the outcome),
    /// or to answer `InProgress` at once (a batch leaves the subscription to its holder
    /// and goes on with the next one).
    pub wait_for_holder: bool,
}

impl ProvisioningPolicy {
    /// How much longer than its deadline a holder keeps its lease, so that a live holder
    /// never loses it (clock steps, a slow last statement). Any operation that takes the
    /// subscription's lease uses the same margin.
    pub const LEASE_MARGIN: Duration = Duration::from_secs(5);

    /// The default waits, under this deadline.
    pub fn for_deadline(deadline: Duration) -> Self {
        Self {
            deadline,
            ..Self::default()
        }
    }

    /// How long a lease protects a holder that may have crashed: past the deadline, so a live
    /// holder never loses it. Derived, so it can never fall behind a changed deadline.
    pub fn lease_ttl(&self) -> Duration {
        self.deadline + Self::LEASE_MARGIN
    }
}

impl Default for ProvisioningPolicy {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(15),
            poll_interval: Duration::from_millis(20),
            max_poll_interval: Duration::from_millis(250),
            wait_for_holder: true,
        }
    }
}

/// The use case, holding its ports.
#[derive(Clone)]
pub struct ProvisionSubscription {
    orgs: Arc<dyn OrgRepo>,
    subscriptions: Arc<dyn SubscriptionRepo>,
    store: Arc<dyn ProvisioningStore>,
    leases: Arc<dyn LeaseStore>,
    stigg: Arc<dyn StiggGateway>,
    clock: Arc<dyn Clock>,
    policy: ProvisioningPolicy,
}

impl ProvisionSubscription {
    pub fn new(
        orgs: Arc<dyn OrgRepo>,
        subscriptions: Arc<dyn SubscriptionRepo>,
        store: Arc<dyn ProvisioningStore>,
        leases: Arc<dyn LeaseStore>,
        stigg: Arc<dyn StiggGateway>,
        clock: Arc<dyn Clock>,
        policy: ProvisioningPolicy,
    ) -> Self {
        Self {
            orgs,
            subscriptions,
            store,
            leases,
            stigg,
            clock,
            policy,
        }
    }

    pub async fn execute(
        &self,
        request: &ProvisionRequest,
        ctx: &OperationContext,
    ) -> Result<Provisioned, ProvisionError> {
        let deadline = self.clock.monotonic() + self.policy.deadline;
        // Both lookups are needed on every path past validation, so they run together.
        let (org, subscription) = futures::try_join!(
            self.orgs.find(&request.org_id),
            self.subscriptions
                .find_by_stripe_id(&request.stripe_subscription_id),
        )?;
        let org = check_organization(org, request, ctx)?;
        let subscription = check_subscription(subscription, request)?;

        let key = LeaseKey::subscription(&subscription.stripe_subscription_id);
        let mut pause = self.policy.poll_interval;
        loop {
            let customer = match self
                .store
                .load(&org.id, &subscription.stripe_subscription_id)
                .await?
            {
                ProvisioningState::Done(done) => {
                    debug!(subscription = %done.stripe_subscription_id, "already provisioned");
                    return Ok(Provisioned {
                        stigg_customer_id: done.stigg_customer_id,
                        stigg_subscription_id: done.stigg_subscription_id,
                        already_provisioned: true,
                    });
                }
                ProvisioningState::Pending { customer } => customer,
            };
            let lease = self
                .leases
                .try_take(&key, self.clock.now(), self.policy.lease_ttl())
                .await?;
            if let Some(lease) = lease {
                let started = self
                    .store
                    .start_attempt(
                        &org.id,
                        &subscription.stripe_subscription_id,
                        self.clock.now(),
                    )
                    .await;
                if !matches!(started, Ok(true)) {
                    // Finished by the holder before us (the next `load` answers from the
                    // record), or the store failed.
                    self.release(&lease).await;
                    started?;
                    continue;
                }
                let call = CallContext {
                    correlation_id: ctx.correlation_id.clone(),
                    deadline,
                };
                let attempt = Attempt {
                    request,
                    ctx,
                    org: &org,
                    subscription: &subscription,
                    lease: &lease,
                    call: &call,
                };
                let outcome = self.provision(&attempt, customer).await;
                if let Err(error) = &outcome {
                    self.record_failure(&subscription.stripe_subscription_id, error)
                        .await;
                }
                self.release(&lease).await;
                return outcome;
            }
            // Another request holds the lease: wait for it to finish (or for its lease to
            // lapse), but never past our own deadline.
            if !self.policy.wait_for_holder || self.clock.monotonic() + pause >= deadline {
                // Best effort: the caller's error matters more than this detail, and a batch
                // that goes on at once does not ask.
                let until = if self.policy.wait_for_holder {
                    self.leases.expiry(&key).await.ok().flatten()
                } else {
                    None
                };
                return Err(ProvisionError::InProgress {
                    stripe_subscription_id: subscription.stripe_subscription_id,
                    until,
                });
            }
            self.clock.sleep(pause).await;
            pause = (pause * 2).min(self.policy.max_poll_interval);
        }
    }

    /// The Stigg calls, made while holding the lease.
    async fn provision(
        &self,
        attempt: &Attempt<'_>,
        customer: Option<ProvisionedCustomer>,
    ) -> Result<Provisioned, ProvisionError> {
        let Attempt {
            request,
            ctx,
            org,
            subscription,
            lease,
            call,
        } = *attempt;
        let steps = ProvisioningSteps {
            store: self.store.as_ref(),
            stigg: self.stigg.as_ref(),
            clock: self.clock.as_ref(),
        };
        let new = NewSubscription {
            org,
            billing_id: &request.stripe_customer_id,
            subscription_id: &subscription.stripe_subscription_id,
            plan: &request.plan,
            trial: subscription
                .is_trialing()
                .then_some(subscription.trial_ends_at),
            tenant_id: ctx.tenant_id.clone(),
            lease,
            call,
        };
        let ids = steps
            .provision(&new, customer)
            .await
            .map_err(|error| match error {
                StepError::Stigg(error) => ProvisionError::Stigg(error),
                StepError::Store(error) => ProvisionError::Store(error),
            })?;
        Ok(Provisioned {
            stigg_customer_id: ids.stigg_customer_id,
            stigg_subscription_id: ids.stigg_subscription_id,
            already_provisioned: false,
        })
    }

    /// Keeps why the attempt failed, for `reconcile` and operators. Best effort: the
    /// caller's error matters more.
    async fn record_failure(&self, subscription: &StripeSubscriptionId, error: &ProvisionError) {
        if let Err(store_error) = self
            .store
            .record_failure(subscription, &error.to_string())
            .await
        {
            warn!(%subscription, error = %store_error, "could not record the provisioning failure");
        }
    }

    async fn release(&self, lease: &Lease) {
        super::lease_release::release(self.leases.as_ref(), lease).await;
    }
}

fn check_organization(
    org: Option<Organization>,
    request: &ProvisionRequest,
    ctx: &OperationContext,
) -> Result<Organization, ProvisionError> {
    let in_tenant = |org: &Organization| match &ctx.tenant_id {
        Some(tenant) => org.tenant_id.as_ref().and_then(Stored::valid) == Some(tenant),
        None => true,
    };
    let org = org
        .filter(in_tenant)
        .ok_or_else(|| ProvisionError::OrganizationNotFound {
            org_id: request.org_id.clone(),
        })?;
    if org.stripe_customer_id.as_ref().and_then(Stored::valid) != Some(&request.stripe_customer_id)
    {
        return Err(ProvisionError::StripeCustomerNotFound {
            org_id: request.org_id.clone(),
            stripe_customer_id: request.stripe_customer_id.clone(),
        });
    }
    Ok(org)
}

fn check_subscription(
    subscription: Option<Subscription>,
    request: &ProvisionRequest,
) -> Result<Subscription, ProvisionError> {
    let subscription = subscription
        .filter(|s| s.organization_id.valid() == Some(&request.org_id))
        .ok_or_else(|| ProvisionError::SubscriptionNotFound {
            org_id: request.org_id.clone(),
            stripe_subscription_id: request.stripe_subscription_id.clone(),
        })?;
    if subscription.plan_code.valid() != Some(&request.plan.code) {
        return Err(ProvisionError::PlanMismatch {
            requested: request.plan.code.clone(),
            actual: subscription.plan_code.raw().to_owned(),
        });
    }
    if !subscription.status.is_provisionable() {
        return Err(ProvisionError::NotProvisionable {
            stripe_subscription_id: subscription.stripe_subscription_id,
            status: subscription.status,
        });
    }
    Ok(subscription)
}
