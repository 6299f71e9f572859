use std::collections::HashMap;
use std::fmt;

use super::{PlanCode, StripePrice, StripePriceId};

/// How often Stigg's plan is billed (Stripe does the billing; Stigg needs it for entitlements).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BillingPeriod {
    Monthly,
    Annually,
}

impl BillingPeriod {
    /// The spelling Stigg's API uses.
    pub fn as_stigg(self) -> &'static str {
        match self {
            Self::Monthly => "MONTHLY",
            Self::Annually => "ANNUALLY",
        }
    }
}

impl fmt::Display for BillingPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_stigg())
    }
}

/// One entry of the plan catalog: our plan code and what it is in Stigg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub code: PlanCode,
    pub stigg_plan_id: String,
    pub billing_period: BillingPeriod,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanCatalogError {
    #[error("plan code '{0}' appears more than once")]
    Duplicate(PlanCode),
    #[error("plan code '{0}' has an empty Stigg plan id")]
    EmptyStiggPlanId(PlanCode),
    #[error("the plan catalog is empty")]
    Empty,
    #[error("Stripe prices are listed for plan code '{0}', which the catalog does not have")]
    PricesForUnknownPlan(PlanCode),
    #[error("Stripe price '{price_id}' is listed under both '{first}' and '{second}'")]
    PriceListedTwice {
        price_id: StripePriceId,
        first: PlanCode,
        second: PlanCode,
    },
}

/// The plan codes the service accepts, loaded once at start-up.
#[derive(Debug, Clone, Default)]
pub struct PlanCatalog {
    plans: HashMap<PlanCode, Plan>,
    /// The Stripe prices each plan lists. Kept beside the plans rather than in [`Plan`] so
    /// that a catalog without them is built exactly as before.
    stripe_prices: HashMap<StripePriceId, PlanCode>,
}

impl PlanCatalog {
    pub fn new(plans: impl IntoIterator<Item = Plan>) -> Result<Self, PlanCatalogError> {
        let mut map = HashMap::new();
        for plan in plans {
            if plan.stigg_plan_id.trim().is_empty() {
                return Err(PlanCatalogError::EmptyStiggPlanId(plan.code));
            }
            if let Some(previous) = map.insert(plan.code.clone(), plan) {
                return Err(PlanCatalogError::Duplicate(previous.code));
            }
        }
        if map.is_empty() {
            return Err(PlanCatalogError::Empty);
        }
        Ok(Self {
            plans: map,
            stripe_prices: HashMap::new(),
        })
    }

    /// The catalog, with the Stripe prices each plan code lists (`stripe_price_ids`). A
    /// price belongs to one plan at most, or the plan of a Stripe subscription would
    /// depend on which entry is read first.
    pub fn with_stripe_prices<P>(
        mut self,
        prices: impl IntoIterator<Item = (PlanCode, P)>,
    ) -> Result<Self, PlanCatalogError>
    where
        P: IntoIterator<Item = StripePriceId>,
    {
        for (code, price_ids) in prices {
            if !self.plans.contains_key(&code) {
                return Err(PlanCatalogError::PricesForUnknownPlan(code));
            }
            for price_id in price_ids {
                match self.stripe_prices.get(&price_id) {
                    Some(first) if *first != code => {
                        return Err(PlanCatalogError::PriceListedTwice {
                            first: first.clone(),
                            second: code,
                            price_id,
                        });
                    }
                    _ => {
                        self.stripe_prices.insert(price_id, code.clone());
                    }
                }
            }
        }
        Ok(self)
    }

    /// The plan a Stripe price stands for: the one that lists the price id, else the one
    /// whose code is the price's lookup key.
    pub fn plan_for_price(&self, price: &StripePrice) -> Option<&Plan> {
        match self.stripe_prices.get(&price.id) {
            Some(code) => self.plans.get(code),
            None => price
                .lookup_key
                .as_deref()
                .and_then(|key| PlanCode::parse(key).ok())
                .and_then(|code| self.plans.get(&code)),
        }
    }

    pub fn get(&self, code: &PlanCode) -> Option<&Plan> {
        self.plans.get(code)
    }

    pub fn len(&self) -> usize {
        self.plans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.plans.is_empty()
    }

    pub fn plans(&self) -> impl Iterator<Item = &Plan> {
        self.plans.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::{code, price_id as price};

    fn plan(code: &str, id: &str) -> Plan {
        Plan {
            code: PlanCode::parse(code).unwrap(),
            stigg_plan_id: id.into(),
            billing_period: BillingPeriod::Monthly,
        }
    }

    #[test]
    fn refuses_duplicates_and_blank_ids() {
        assert_eq!(
            PlanCatalog::new([plan("a", "x"), plan("a", "y")]).err(),
            Some(PlanCatalogError::Duplicate(PlanCode::parse("a").unwrap()))
        );
        assert!(matches!(
            PlanCatalog::new([plan("a", " ")]),
            Err(PlanCatalogError::EmptyStiggPlanId(_))
        ));
        assert!(matches!(PlanCatalog::new([]), Err(PlanCatalogError::Empty)));
    }

    fn priced_catalog() -> PlanCatalog {
        PlanCatalog::new([plan("a", "x"), plan("b", "y")])
            .and_then(|c| {
                c.with_stripe_prices([(code("a"), vec![price("price_a1"), price("price_a2")])])
            })
            .unwrap()
    }

    #[test]
    fn a_price_is_found_by_its_id_before_its_lookup_key() {
        let catalog = priced_catalog();
        let plan_of = |id: &str, key: Option<&str>| {
            let price = StripePrice {
                id: price(id),
                lookup_key: key.map(str::to_owned),
            };
            catalog
                .plan_for_price(&price)
                .map(|p| p.code.as_str().to_owned())
        };
        assert_eq!(plan_of("price_a2", None).as_deref(), Some("a"));
        assert_eq!(plan_of("price_a1", Some("b")).as_deref(), Some("a"));
        assert_eq!(plan_of("price_other", Some("b")).as_deref(), Some("b"));
        assert_eq!(plan_of("price_other", Some("c")), None);
        assert_eq!(plan_of("price_other", Some("Not A Code")), None);
        assert_eq!(plan_of("price_other", None), None);
    }

    #[test]
    fn a_price_belongs_to_one_plan_of_the_catalog() {
        let twice = priced_catalog().with_stripe_prices([(code("b"), [price("price_a1")])]);
        assert_eq!(
            twice.err(),
            Some(PlanCatalogError::PriceListedTwice {
                price_id: price("price_a1"),
                first: code("a"),
                second: code("b"),
            })
        );
        let same_plan_again =
            priced_catalog().with_stripe_prices([(code("a"), [price("price_a1")])]);
        assert!(same_plan_again.is_ok());
        assert_eq!(
            priced_catalog()
                .with_stripe_prices([(code("z"), [price("price_z")])])
                .err(),
            Some(PlanCatalogError::PricesForUnknownPlan(code("z")))
        );
    }

    #[test]
    fn looks_plans_up_by_code() {
        let catalog = PlanCatalog::new([plan("a", "x"), plan("b", "y")]).unwrap();
        let b = PlanCode::parse("b").unwrap();
        assert_eq!(catalog.get(&b).map(|p| p.stigg_plan_id.as_str()), Some("y"));
        assert_eq!(catalog.len(), 2);
    }
}
