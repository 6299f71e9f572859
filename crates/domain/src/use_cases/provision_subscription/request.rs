use crate::input::{Field, FieldError, parse_field};
use crate::model::{OrgId, Plan, PlanCatalog, PlanCode, StripeCustomerId, StripeSubscriptionId};

/// The request's fields before parsing, named as the contract names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawProvisionRequest<'a> {
    pub org_id: Field<'a>,
    pub stripe_customer_id: Field<'a>,
    pub stripe_subscription_id: Field<'a>,
    pub plan_code: Field<'a>,
}

/// A request to provision an organization's subscription in Stigg, fully parsed: every id
/// follows its rule and the plan code was found in the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionRequest {
    pub org_id: OrgId,
    pub stripe_customer_id: StripeCustomerId,
    pub stripe_subscription_id: StripeSubscriptionId,
    pub plan: Plan,
}

impl ProvisionRequest {
    /// Parses every field and reports every offending one, not just the first.
    pub fn parse(
        raw: &RawProvisionRequest<'_>,
        catalog: &PlanCatalog,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let org_id = parse_field(&raw.org_id, "orgId", OrgId::parse, &mut errors);
        let stripe_customer_id = parse_field(
            &raw.stripe_customer_id,
            "stripeCustomerId",
            StripeCustomerId::parse,
            &mut errors,
        );
        let stripe_subscription_id = parse_field(
            &raw.stripe_subscription_id,
            "stripeSubscriptionId",
            StripeSubscriptionId::parse,
            &mut errors,
        );
        let plan = parse_field(&raw.plan_code, "planCode", PlanCode::parse, &mut errors).and_then(
            |code| match catalog.get(&code) {
                Some(plan) => Some(plan.clone()),
                None => {
                    errors.push(FieldError::new(
                        "planCode",
                        format!("unknown plan code '{code}'"),
                    ));
                    None
                }
            },
        );
        match (org_id, stripe_customer_id, stripe_subscription_id, plan) {
            (Some(org_id), Some(stripe_customer_id), Some(stripe_subscription_id), Some(plan))
                if errors.is_empty() =>
            {
                Ok(Self {
                    org_id,
                    stripe_customer_id,
                    stripe_subscription_id,
                    plan,
                })
            }
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::BillingPeriod;

    fn catalog() -> PlanCatalog {
        PlanCatalog::new([Plan {
            code: PlanCode::parse("plan_starter_m").unwrap(),
            stigg_plan_id: "plan-starter".into(),
            billing_period: BillingPeriod::Monthly,
        }])
        .unwrap()
    }

    #[test]
    fn parses_a_valid_request_and_resolves_the_plan() {
        let raw = RawProvisionRequest {
            org_id: Field::Value("org_8Yp2"),
            stripe_customer_id: Field::Value("cus_Q1w2E3"),
            stripe_subscription_id: Field::Value("sub_9Zx8Y7"),
            plan_code: Field::Value("plan_starter_m"),
        };
        let req = ProvisionRequest::parse(&raw, &catalog()).unwrap();
        assert_eq!(req.org_id.as_str(), "org_8Yp2");
        assert_eq!(req.plan.stigg_plan_id, "plan-starter");
    }

    #[test]
    fn names_every_offending_field() {
        let raw = RawProvisionRequest {
            org_id: Field::Missing,
            stripe_customer_id: Field::Invalid("must be a string".into()),
            stripe_subscription_id: Field::Value("cus_wrong"),
            plan_code: Field::Value("plan_x"),
        };
        let errors = ProvisionRequest::parse(&raw, &catalog())
            .err()
            .unwrap_or_default();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "orgId",
                "stripeCustomerId",
                "stripeSubscriptionId",
                "planCode"
            ]
        );
        assert_eq!(errors[0].message, "is required");
        assert_eq!(errors[1].message, "must be a string");
        assert_eq!(errors[3].message, "unknown plan code 'plan_x'");
    }

    #[test]
    fn a_malformed_plan_code_is_reported_once() {
        let raw = RawProvisionRequest {
            org_id: Field::Value("o"),
            stripe_customer_id: Field::Value("cus_1"),
            stripe_subscription_id: Field::Value("sub_1"),
            plan_code: Field::Value("Plan-X"),
        };
        let errors = ProvisionRequest::parse(&raw, &catalog())
            .err()
            .unwrap_or_default();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "planCode");
    }
}
