use super::{OrgId, Stored, StripeCustomerId, TenantId};

/// An organization as stories 1.1–1.2 stored it. The ids other systems write are parsed when
/// read; one that breaks its rule is kept as `Stored::Invalid` and matches no request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: OrgId,
    pub name: String,
    pub email: Option<String>,
    pub tenant_id: Option<Stored<TenantId>>,
    pub stripe_customer_id: Option<Stored<StripeCustomerId>>,
}
