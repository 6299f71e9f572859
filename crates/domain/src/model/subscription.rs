use std::fmt;

use chrono::{DateTime, Utc};

use super::{OrgId, PlanCode, Stored, StripeSubscriptionId};

/// A Stripe subscription's `status`. Other systems write it, so a value Stripe may add
/// later is kept as it is rather than refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SubscriptionStatus {
    Trialing,
    Active,
    PastDue,
    Canceled,
    Unpaid,
    Paused,
    Incomplete,
    IncompleteExpired,
    /// A status this version does not know, as stored.
    Other(String),
}

impl SubscriptionStatus {
    /// The statuses whose subscriptions are provisioned in Stigg: Stripe grants (or still
    /// grants, while it retries a payment) access for them. A canceled, unpaid, paused or
    /// incomplete subscription is never provisioned.
    pub const PROVISIONABLE: [Self; 3] = [Self::Trialing, Self::Active, Self::PastDue];

    pub fn parse(raw: &str) -> Self {
        match raw {
            "trialing" => Self::Trialing,
            "active" => Self::Active,
            "past_due" => Self::PastDue,
            "canceled" => Self::Canceled,
            "unpaid" => Self::Unpaid,
            "paused" => Self::Paused,
            "incomplete" => Self::Incomplete,
            "incomplete_expired" => Self::IncompleteExpired,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Stripe's spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Trialing => "trialing",
            Self::Active => "active",
            Self::PastDue => "past_due",
            Self::Canceled => "canceled",
            Self::Unpaid => "unpaid",
            Self::Paused => "paused",
            Self::Incomplete => "incomplete",
            Self::IncompleteExpired => "incomplete_expired",
            Self::Other(raw) => raw,
        }
    }

    pub fn is_provisionable(&self) -> bool {
        Self::PROVISIONABLE.contains(self)
    }
}

impl fmt::Display for SubscriptionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A subscription as story 1.3 stored it after creating the trial in Stripe. Its organization
/// and plan are parsed when read; one that breaks its rule matches no request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The local row id.
    pub id: String,
    pub organization_id: Stored<OrgId>,
    pub stripe_subscription_id: StripeSubscriptionId,
    pub plan_code: Stored<PlanCode>,
    pub status: SubscriptionStatus,
    pub trial_ends_at: Option<DateTime<Utc>>,
}

impl Subscription {
    /// True while Stripe runs the subscription as a trial: Stigg gets a trial too.
    pub fn is_trialing(&self) -> bool {
        self.status == SubscriptionStatus::Trialing
    }
}

#[cfg(test)]
mod tests {
    use super::SubscriptionStatus;

    #[test]
    fn statuses_round_trip_and_only_three_are_provisioned() {
        for raw in [
            "trialing",
            "active",
            "past_due",
            "canceled",
            "unpaid",
            "paused",
            "incomplete",
            "incomplete_expired",
            "something_new",
        ] {
            let status = SubscriptionStatus::parse(raw);
            assert_eq!(status.as_str(), raw);
            assert_eq!(
                status.is_provisionable(),
                ["trialing", "active", "past_due"].contains(&raw),
                "{raw}"
            );
        }
        assert_eq!(
            SubscriptionStatus::parse("weird"),
            SubscriptionStatus::Other("weird".into())
        );
    }
}
