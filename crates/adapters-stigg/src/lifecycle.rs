//! [`HttpStiggGateway`] as the domain's [`StiggLifecycle`] port: the calls the lifecycle
//! sync makes after provisioning. They go through the same client as provisioning (the
//! caller's idempotency key on every attempt, retries, per-operation and per-entity rate
//! limits, the observer), and their 2xx answers are checked like provisioning's
//! ([`crate::checks`]).

use async_trait::async_trait;
use onboarding_domain::model::OrgId;
use onboarding_domain::ports::{
    CallContext, Cancellation, StiggError, StiggLifecycle, StiggSubscription, SubscriptionCreation,
    SubscriptionPatch,
};
use reqwest::Method;
use serde_json::json;

use crate::Operation;
use crate::checks::{WantedSubscription, archived, canceled, patched};
use crate::entity_limit::Entity;
use crate::gateway::{HttpStiggGateway, mutation};
use crate::wire::{
    CancelRequest, CustomerData, PatchRequest, SubscriptionData, SubscriptionRequest,
};

#[async_trait]
impl StiggLifecycle for HttpStiggGateway {
    async fn create_subscription(
        &self,
        subscription: &SubscriptionCreation,
        idempotency_key: &str,
        ctx: &CallContext,
    ) -> Result<StiggSubscription, StiggError> {
        let op = Operation::CreateSubscription;
        let customer_id = subscription.customer_id.as_str();
        let request = mutation(
            op,
            Method::POST,
            self.endpoint(&["subscriptions"]),
            idempotency_key,
            &SubscriptionRequest::from(subscription),
            Entity::Customer(customer_id.to_owned()),
        )?;
        let wanted = WantedSubscription {
            id: None,
            customer_id,
            plan_id: &subscription.plan.stigg_plan_id,
            billing_period: subscription.plan.billing_period,
        };
        self.create_subscription_checked(op, &request, &wanted, ctx)
            .await
    }

    async fn patch_subscription(
        &self,
        subscription_id: &str,
        patch: SubscriptionPatch,
        idempotency_key: &str,
        ctx: &CallContext,
    ) -> Result<(), StiggError> {
        let op = Operation::PatchSubscription;
        let request = mutation(
            op,
            Method::PATCH,
            self.endpoint(&["subscriptions", subscription_id]),
            idempotency_key,
            &PatchRequest::from(patch),
            Entity::Subscription(subscription_id.to_owned()),
        )?;
        self.call(op, &request, ctx, |answer| {
            let data: SubscriptionData = self.success_data(op, &answer)?;
            patched(&data, subscription_id, patch)
        })
        .await
    }

    async fn cancel_subscription(
        &self,
        subscription_id: &str,
        cancellation: Cancellation,
        idempotency_key: &str,
        ctx: &CallContext,
    ) -> Result<(), StiggError> {
        let op = Operation::CancelSubscription;
        let request = mutation(
            op,
            Method::POST,
            self.endpoint(&["subscriptions", subscription_id, "cancel"]),
            idempotency_key,
            &CancelRequest::from(cancellation),
            Entity::Subscription(subscription_id.to_owned()),
        )?;
        self.call(op, &request, ctx, |answer| {
            match self.success_data::<SubscriptionData>(op, &answer) {
                // Ended already is what an immediate cancel asks for. Not for a cancel on
                // a date: the subscription ended before it, which the caller must hear.
                Err(StiggError::Rejected { code, .. })
                    if code == ALREADY_ENDED
                        && matches!(cancellation, Cancellation::Immediately { .. }) =>
                {
                    tracing::info!(
                        correlation_id = %ctx.correlation_id,
                        subscription_id,
                        "Stigg subscription was canceled or expired already; counted as canceled"
                    );
                    Ok(())
                }
                data => canceled(&data?, subscription_id, cancellation),
            }
        })
        .await
    }

    async fn archive_customer(
        &self,
        customer_id: &OrgId,
        idempotency_key: &str,
        ctx: &CallContext,
    ) -> Result<(), StiggError> {
        let op = Operation::ArchiveCustomer;
        let id = customer_id.as_str();
        // The call takes no fields; an empty object rather than no body, since a JSON
        // content type with an empty body is refused by some servers.
        let request = mutation(
            op,
            Method::POST,
            self.endpoint(&["customers", id, "archive"]),
            idempotency_key,
            &json!({}),
            Entity::Customer(id.to_owned()),
        )?;
        self.call(op, &request, ctx, |answer| {
            let data: CustomerData = self.success_data(op, &answer)?;
            archived(&data, id)
        })
        .await
    }
}

/// Stigg's code when refusing to cancel a subscription that is canceled or expired.
const ALREADY_ENDED: &str = "SubscriptionAlreadyCanceledOrExpired";
