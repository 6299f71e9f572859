//! The per-entity limit: Stigg allows 30 mutations a minute on one customer, and on one
//! subscription, whichever endpoints they go through (customer routes and subscription
//! creates count against the customer, a subscription's patch and cancel against the
//! subscription), and answers 429 beyond. The client keeps one GCRA bucket per entity it
//! mutates, next to the per-operation ones ([`crate::rate_limit`]), in the same store
//! ([`crate::budget`]), which drops the buckets of entities no longer mutated.

/// What a mutation counts against. Customer and subscription ids live apart: an
/// organization id may read like a subscription id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Entity {
    Customer(String),
    Subscription(String),
}

impl Entity {
    /// The entity's bucket key.
    pub(crate) fn key(&self) -> String {
        match self {
            Self::Customer(id) => format!("customer:{id}"),
            Self::Subscription(id) => format!("subscription:{id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customers_and_subscriptions_of_one_id_have_separate_buckets() {
        let customer = Entity::Customer("x_1".into());
        let subscription = Entity::Subscription("x_1".into());
        assert_eq!(customer.key(), "customer:x_1");
        assert_ne!(customer.key(), subscription.key());
    }
}
