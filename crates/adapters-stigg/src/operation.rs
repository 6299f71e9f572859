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
    /// `GET /api/v1/subscriptions/{id}`, after a 409 on create.
    ReadSubscription,
}

impl Operation {
    /// Every operation, e.g. to register metric series up front.
    pub const ALL: [Self; 4] = [
        Self::ProvisionCustomer,
        Self::ProvisionSubscription,
        Self::ReadCustomer,
        Self::ReadSubscription,
    ];

    /// The name used in log fields, error messages and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ProvisionCustomer => "provision_customer",
            Self::ProvisionSubscription => "provision_subscription",
            Self::ReadCustomer => "read_customer",
            Self::ReadSubscription => "read_subscription",
        }
    }

    /// Position in [`Operation::ALL`], used to index per-operation state without a map.
    pub(crate) fn index(self) -> usize {
        match self {
            Self::ProvisionCustomer => 0,
            Self::ProvisionSubscription => 1,
            Self::ReadCustomer => 2,
            Self::ReadSubscription => 3,
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
}
