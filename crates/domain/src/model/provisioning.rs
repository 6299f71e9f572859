use chrono::{DateTime, Utc};

use super::{OrgId, StripeCustomerId, StripeSubscriptionId};

/// The customer exists in Stigg (recorded once per organization).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionedCustomer {
    pub org_id: OrgId,
    pub stigg_customer_id: String,
    pub billing_id: StripeCustomerId,
    pub provisioned_at: DateTime<Utc>,
}

/// The subscription exists in Stigg: provisioning of it is finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionedSubscription {
    pub org_id: OrgId,
    pub stripe_subscription_id: StripeSubscriptionId,
    pub stigg_customer_id: String,
    pub stigg_subscription_id: String,
    pub provisioned_at: DateTime<Utc>,
}

/// What the store knows about one subscription's provisioning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProvisioningState {
    /// Nothing left to do; answer with what was recorded.
    Done(ProvisionedSubscription),
    /// The subscription still has to be provisioned; the customer may already be there.
    Pending {
        customer: Option<ProvisionedCustomer>,
    },
}
