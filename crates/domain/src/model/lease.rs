use std::fmt;

use chrono::{DateTime, Utc};

use super::{StripeCustomerId, StripeSubscriptionId};

/// What a lease protects. One key per Stripe subscription, whatever is done to it: the
/// provisioning and every later move of its Stigg state take the same key, so they never run
/// at once for one subscription, on any instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeaseKey(String);

impl LeaseKey {
    /// The lease on everything Stigg holds for this subscription.
    pub fn subscription(id: &StripeSubscriptionId) -> Self {
        Self(format!("subscription:{id}"))
    }

    /// The lease on a Stripe customer's own changes (its deletion archives the Stigg
    /// customer).
    pub fn customer(id: &StripeCustomerId) -> Self {
        Self(format!("customer:{id}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LeaseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Proof that this caller holds `key` until `expires_at`. Opaque to the domain: the store
/// that issued it checks the holder on renew and release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub key: LeaseKey,
    /// Unique per take: a lease taken again by the same process is another holder.
    pub holder: String,
    pub expires_at: DateTime<Utc>,
}
