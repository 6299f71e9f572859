//! The domain's store ports, implemented on `Database`: one file per port, except the
//! reconcile backlog, a query over subscriptions that lives with `SubscriptionRepo`.

mod debug_log;
mod lease_store;
mod org_repo;
mod provisioning_store;
mod rate_buckets;
mod stripe_inbox;
mod subscription_repo;
mod sync_state_store;

pub use rate_buckets::{BucketDraw, BudgetChoice, BudgetTake};

use std::borrow::Cow;

use onboarding_domain::text::truncate_chars;

use crate::rows::storable;

/// Stored error texts keep the start of the failure message; the full one is in the logs.
const MAX_ERROR_CHARS: usize = 1000;

/// An error text as stored: its start, as PostgreSQL can hold it.
fn stored_error(error: &str) -> Cow<'_, str> {
    storable(truncate_chars(error, MAX_ERROR_CHARS))
}
