//! What the onboarding domain talks about: identifiers, organizations, subscriptions, plans
//! and the record of what has been provisioned in Stigg, and the leases that
//! serialise work on one subscription.

mod ids;
mod lease;
mod organization;
mod plan;
mod provisioning;
mod stored;
mod subscription;

pub(crate) use ids::MAX_TRACE_ID_LEN;
pub use ids::{
    CorrelationId, IdError, OrgId, PlanCode, RequestId, StripeCustomerId, StripeSubscriptionId,
    TenantId,
};
pub use lease::{Lease, LeaseKey};
pub use organization::Organization;
pub use plan::{BillingPeriod, Plan, PlanCatalog, PlanCatalogError};
pub use provisioning::{ProvisionedCustomer, ProvisionedSubscription, ProvisioningState};
pub use stored::Stored;
pub use subscription::{Subscription, SubscriptionStatus};
