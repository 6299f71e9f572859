//! What the onboarding domain talks about: identifiers, organizations, subscriptions, plans
//! and the record of what has been provisioned in Stigg.

mod ids;
mod organization;
mod plan;
mod provisioning;
mod subscription;

pub(crate) use ids::MAX_TRACE_ID_LEN;
pub use ids::{
    CorrelationId, IdError, OrgId, PlanCode, RequestId, StripeCustomerId, StripeSubscriptionId,
    TenantId,
};
pub use organization::Organization;
pub use plan::{BillingPeriod, Plan, PlanCatalog, PlanCatalogError};
pub use provisioning::{
    LeaseToken, ProvisionedCustomer, ProvisionedSubscription, ProvisioningState,
};
pub use subscription::{Subscription, SubscriptionStatus};
