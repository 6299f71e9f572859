use super::OrgId;

/// An organization as stories 1.1–1.2 stored it. Columns other systems write are kept as
/// they are (plain strings): they are compared with parsed input, never trusted as parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: OrgId,
    pub name: String,
    pub email: Option<String>,
    pub tenant_id: Option<String>,
    pub stripe_customer_id: Option<String>,
}
