//! What the HTTP handlers share.

use std::sync::Arc;

use async_trait::async_trait;
use onboarding_domain::model::PlanCatalog;
use onboarding_domain::use_cases::provision_subscription::ProvisionSubscription;

/// Whether the service can do its work now (database reachable, schema up to date).
#[async_trait]
pub trait Readiness: Send + Sync {
    /// `Err` says why not, in words safe to show.
    async fn check(&self) -> Result<(), String>;
}

pub struct AppState {
    pub provision: ProvisionSubscription,
    pub catalog: Arc<PlanCatalog>,
    pub readiness: Arc<dyn Readiness>,
}
