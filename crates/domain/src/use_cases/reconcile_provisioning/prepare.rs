use super::ReconcileOptions;
use crate::model::{
    CorrelationId, MAX_TRACE_ID_LEN, Organization, PlanCatalog, Stored, StripeSubscriptionId,
    Subscription,
};
use crate::text::truncate_chars;
use crate::use_cases::OperationContext;
use crate::use_cases::provision_subscription::ProvisionRequest;

/// Longest stored value quoted back in a failure reason.
const MAX_QUOTED_CHARS: usize = 64;

/// The request and context the API would have received for this subscription, built from
/// what is stored; every problem is named in the error.
pub(super) fn prepare(
    org: &Organization,
    subscription: &Subscription,
    catalog: &PlanCatalog,
    options: &ReconcileOptions,
) -> Result<(ProvisionRequest, OperationContext), String> {
    let mut problems = Vec::new();
    let stripe_customer_id = match &org.stripe_customer_id {
        None => {
            problems.push(format!(
                "organization '{}' has no Stripe customer id",
                org.id
            ));
            None
        }
        Some(Stored::Valid(id)) => Some(id.clone()),
        Some(Stored::Invalid { raw, error }) => {
            problems.push(format!(
                "organization '{}' has an invalid Stripe customer id {}: {error}",
                org.id,
                quoted(raw)
            ));
            None
        }
    };
    let plan = subscription
        .plan_code
        .valid()
        .and_then(|code| catalog.get(code).cloned());
    if plan.is_none() {
        problems.push(format!(
            "unknown plan code {}",
            quoted(subscription.plan_code.raw())
        ));
    }
    let tenant_id = match &org.tenant_id {
        None => None,
        Some(Stored::Valid(id)) => Some(id.clone()),
        Some(Stored::Invalid { raw, error }) => {
            problems.push(format!(
                "organization '{}' has an invalid tenant id {}: {error}",
                org.id,
                quoted(raw)
            ));
            None
        }
    };
    let correlation_id = correlation_id(&options.run_id, &subscription.stripe_subscription_id)
        .map_err(|e| problems.push(format!("cannot form a correlation id: {e}")))
        .ok();
    match (stripe_customer_id, plan, correlation_id) {
        (Some(stripe_customer_id), Some(plan), Some(correlation_id)) if problems.is_empty() => {
            Ok((
                ProvisionRequest {
                    org_id: org.id.clone(),
                    stripe_customer_id,
                    stripe_subscription_id: subscription.stripe_subscription_id.clone(),
                    plan,
                },
                OperationContext {
                    correlation_id,
                    tenant_id,
                },
            ))
        }
        _ => Err(problems.join("; ")),
    }
}

/// `reconcile-<run id>-<subscription>`, cut to the contract's 128 characters.
pub(super) fn correlation_id(
    run_id: &str,
    subscription: &StripeSubscriptionId,
) -> Result<CorrelationId, crate::model::IdError> {
    let full = format!("reconcile-{run_id}-{subscription}");
    CorrelationId::parse(truncate_chars(&full, MAX_TRACE_ID_LEN))
}

/// A stored value quoted in a reason: escaped, and cut when long.
pub(super) fn quoted(raw: &str) -> String {
    let shown = truncate_chars(raw, MAX_QUOTED_CHARS);
    let more = if shown.len() < raw.len() { "…" } else { "" };
    format!("'{}{more}'", shown.escape_debug())
}
