use crate::model::{CorrelationId, TenantId};

/// Who asks, beyond the request itself: the same for every use case (an API request, a CLI
/// command, a worker's event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationContext {
    pub correlation_id: CorrelationId,
    /// When given, the organization must belong to this tenant.
    pub tenant_id: Option<TenantId>,
}
