use std::collections::HashMap;
use std::fmt;

use super::PlanCode;

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
}

/// The plan codes the service accepts, loaded once at start-up.
#[derive(Debug, Clone, Default)]
pub struct PlanCatalog {
    plans: HashMap<PlanCode, Plan>,
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
        Ok(Self { plans: map })
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

    fn plan(code: &str, id: &str) -> Plan {
        Plan {
            code: PlanCode::parse(code).unwrap_or_else(|e| panic!("{e}")),
            stigg_plan_id: id.into(),
            billing_period: BillingPeriod::Monthly,
        }
    }

    #[test]
    fn refuses_duplicates_and_blank_ids() {
        assert_eq!(
            PlanCatalog::new([plan("a", "x"), plan("a", "y")]).err(),
            Some(PlanCatalogError::Duplicate(
                PlanCode::parse("a").unwrap_or_else(|e| panic!("{e}"))
            ))
        );
        assert!(matches!(
            PlanCatalog::new([plan("a", " ")]),
            Err(PlanCatalogError::EmptyStiggPlanId(_))
        ));
        assert!(matches!(PlanCatalog::new([]), Err(PlanCatalogError::Empty)));
    }

    #[test]
    fn looks_plans_up_by_code() {
        let catalog =
            PlanCatalog::new([plan("a", "x"), plan("b", "y")]).unwrap_or_else(|e| panic!("{e}"));
        let b = PlanCode::parse("b").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(catalog.get(&b).map(|p| p.stigg_plan_id.as_str()), Some("y"));
        assert_eq!(catalog.len(), 2);
    }
}
