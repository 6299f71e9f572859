//! The calls this adapter makes to Stigg, named once for logs, errors, rate limits and metrics.

use std::fmt;

/// One kind of call to Stigg. Each has its own client-side rate-limit bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `POST /api/v1/customers`
    ProvisionCustomer,
    /// `POST /api/v1/subscriptions`
    ProvisionSubscription,
    /// `GET /api/v1/customers/{id}`, after a 409 on create.
    ReadCustomer,
    /// `GET /api/v1/subscriptions/{id}`, after a 409 on create or an answer without the
    /// subscription.
    ReadSubscription,
    /// `POST /api/v1/subscriptions` without an id (Stigg assigns it), after a resume or a
    /// plan change.
    CreateSubscription,
    /// `PATCH /api/v1/subscriptions/{id}`
    PatchSubscription,
    /// `POST /api/v1/subscriptions/{id}/cancel`
    CancelSubscription,
    /// `POST /api/v1/customers/{id}/archive`
    ArchiveCustomer,
}

impl Operation {
    /// Every operation, e.g. to register metric series up front.
    pub const ALL: [Self; 8] = [
        Self::ProvisionCustomer,
        Self::ProvisionSubscription,
        Self::ReadCustomer,
        Self::ReadSubscription,
        Self::CreateSubscription,
        Self::PatchSubscription,
        Self::CancelSubscription,
        Self::ArchiveCustomer,
    ];

    /// The name used in log fields, error messages and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ProvisionCustomer => "provision_customer",
            Self::ProvisionSubscription => "provision_subscription",
            Self::ReadCustomer => "read_customer",
            Self::ReadSubscription => "read_subscription",
            Self::CreateSubscription => "create_subscription",
            Self::PatchSubscription => "patch_subscription",
            Self::CancelSubscription => "cancel_subscription",
            Self::ArchiveCustomer => "archive_customer",
        }
    }

    /// Position in [`Operation::ALL`], used to index per-operation state without a map.
    pub(crate) fn index(self) -> usize {
        match self {
            Self::ProvisionCustomer => 0,
            Self::ProvisionSubscription => 1,
            Self::ReadCustomer => 2,
            Self::ReadSubscription => 3,
            Self::CreateSubscription => 4,
            Self::PatchSubscription => 5,
            Self::CancelSubscription => 6,
            Self::ArchiveCustomer => 7,
        }
    }

    /// The operation whose client-side bucket this one draws from. A subscription created
    /// with or without an id is one Stigg mutation with one quota, so both creates share a
    /// bucket; every other operation has its own.
    pub(crate) fn bucket(self) -> Self {
        match self {
            Self::CreateSubscription => Self::ProvisionSubscription,
            other => other,
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_match_the_order_of_all() {
        for (i, op) in Operation::ALL.iter().enumerate() {
            assert_eq!(op.index(), i, "{op}");
        }
    }

    #[test]
    fn only_the_two_subscription_creates_share_a_bucket() {
        for op in Operation::ALL {
            let sharing: Vec<_> = Operation::ALL
                .into_iter()
                .filter(|other| other != &op && other.bucket() == op.bucket())
                .collect();
            let expected = match op {
                Operation::ProvisionSubscription => vec![Operation::CreateSubscription],
                Operation::CreateSubscription => vec![Operation::ProvisionSubscription],
                _ => vec![],
            };
            assert_eq!(sharing, expected, "{op}");
        }
    }
}
