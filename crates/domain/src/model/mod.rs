//! What the onboarding domain talks about: identifiers, organizations, subscriptions, plans
//! and the record of what has been provisioned in Stigg, the leases that serialise work on
//! one subscription, and what the lifecycle sync reads from Stripe and moves Stigg to.

mod applied;
#[cfg(test)]
pub(crate) mod fixtures;
mod ids;
mod lease;
mod organization;
mod plan;
mod provisioning;
mod stigg_move;
mod stigg_target;
mod stored;
mod stripe;
mod stripe_event;
mod subscription;

pub use applied::{AppliedState, AppliedStatus};
pub(crate) use ids::MAX_TRACE_ID_LEN;
pub use ids::{
    CorrelationId, IdError, OrgId, PlanCode, RequestId, StripeCustomerId, StripePriceId,
    StripeSubscriptionId, TenantId,
};
pub use lease::{Lease, LeaseKey};
pub use organization::Organization;
pub use plan::{BillingPeriod, Plan, PlanCatalog, PlanCatalogError};
pub use provisioning::{ProvisionedCustomer, ProvisionedSubscription, ProvisioningState};
pub use stigg_move::{Change, Creation, CreationKind, Move, archive_key};
pub use stigg_target::{ActiveTarget, StiggTarget, Untouched};
pub use stored::Stored;
pub use stripe::{StripeCustomer, StripePrice, StripeSubscription, StripeSubscriptionItem};
pub use stripe_event::{
    CUSTOMER_DELETED, EventStatus, EventSubject, HANDLED_SUBSCRIPTION_EVENTS, MoveRecord,
    ReceivedEvent, StripeEventId, handled_event_type,
};
pub use subscription::{Subscription, SubscriptionStatus};
