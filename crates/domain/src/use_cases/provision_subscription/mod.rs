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
use tracing::{debug, info, warn};

pub use request::{ProvisionRequest, RawProvisionRequest};

use super::OperationContext;
use crate::model::{
    Lease, LeaseKey, OrgId, Organization, PlanCode, ProvisionedCustomer, ProvisionedSubscription,
    ProvisioningState, Stored, StripeCustomerId, StripeSubscriptionId, Subscription,
    SubscriptionStatus,
};
use crate::ports::{
    CallContext, Clock, CustomerProvisioning, KeyRenewal, LeaseStore, OrgRepo, ProvisioningStore,
    RepoError, StiggError, StiggGateway, SubscriptionProvisioning, SubscriptionRepo,
    TrialConfiguration,
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
            if self.clock.monotonic() + pause >= deadline {
                // Best effort: the caller's error matters more than this detail.
                let until = self.leases.expiry(&key).await.ok().flatten();
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
            org,
            subscription,
            lease,
            call,
            ..
        } = *attempt;
        // A recorded customer counts only for the billing id this request carries: after the
        // organization's Stripe customer changed, the customer step runs again, so the new
        // subscription never attaches silently to a customer billed as the old one.
        let recorded = customer
            .filter(|c| c.billing_id == request.stripe_customer_id)
            .map(|c| c.stigg_customer_id);
        let mut stigg_customer_id = match recorded {
            Some(id) => id,
            None => self.provision_customer(attempt, None).await?,
        };

        let mut wanted = SubscriptionProvisioning {
            subscription_id: subscription.stripe_subscription_id.clone(),
            customer_id: org.id.clone(),
            plan_code: request.plan.code.clone(),
            stigg_plan_id: request.plan.stigg_plan_id.clone(),
            billing_period: request.plan.billing_period,
            trial: subscription.is_trialing().then_some(TrialConfiguration {
                ends_at: subscription.trial_ends_at,
            }),
            renewal: None,
        };
        let created = match self.stigg.provision_subscription(&wanted, call).await {
            // The customer we rely on is gone from Stigg (deleted, archived, or a 2xx that
            // never created it). Retrying on the record would fail forever: forget it and
            // create the customer again, once per attempt. Both calls go out under keys of
            // this attempt, since Stigg replays what it answered to the old ones.
            Err(StiggError::CustomerNotFound { .. }) => {
                warn!(org_id = %org.id, "the Stigg customer is missing; provisioning it again");
                self.store.forget_customer(&org.id).await?;
                let renewal = KeyRenewal(lease.holder.clone());
                stigg_customer_id = self
                    .provision_customer(attempt, Some(renewal.clone()))
                    .await?;
                wanted.renewal = Some(renewal);
                self.stigg.provision_subscription(&wanted, call).await?
            }
            other => other?,
        };
        info!(
            org_id = %org.id,
            stigg_subscription_id = %created.id,
            "subscription provisioned in Stigg"
        );
        self.store
            .record_subscription(&ProvisionedSubscription {
                org_id: org.id.clone(),
                stripe_subscription_id: subscription.stripe_subscription_id.clone(),
                stigg_customer_id: stigg_customer_id.clone(),
                stigg_subscription_id: created.id.clone(),
                provisioned_at: self.clock.now(),
            })
            .await?;
        Ok(Provisioned {
            stigg_customer_id,
            stigg_subscription_id: created.id,
            already_provisioned: false,
        })
    }

    /// Creates the organization's customer in Stigg and records it; its Stigg id.
    async fn provision_customer(
        &self,
        attempt: &Attempt<'_>,
        renewal: Option<KeyRenewal>,
    ) -> Result<String, ProvisionError> {
        let Attempt {
            request,
            ctx,
            org,
            call,
            ..
        } = *attempt;
        let created = self
            .stigg
            .provision_customer(
                &CustomerProvisioning {
                    customer_id: org.id.clone(),
                    name: org.name.clone(),
                    email: org.email.clone(),
                    billing_id: request.stripe_customer_id.clone(),
                    tenant_id: ctx.tenant_id.clone(),
                    renewal,
                },
                call,
            )
            .await?;
        info!(org_id = %org.id, stigg_customer_id = %created.id, "customer provisioned in Stigg");
        self.store
            .record_customer(&ProvisionedCustomer {
                org_id: org.id.clone(),
                stigg_customer_id: created.id.clone(),
                billing_id: request.stripe_customer_id.clone(),
                provisioned_at: self.clock.now(),
            })
            .await?;
        Ok(created.id)
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

    /// Gives the lease back so the next holder need not wait for it to lapse. If this fails,
    /// the lease lapses by itself.
    async fn release(&self, lease: &Lease) {
        if let Err(error) = self.leases.release(lease).await {
            warn!(key = %lease.key, %error, "could not release the lease; it will lapse");
        }
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
