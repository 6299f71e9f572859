use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use onboarding_domain::model::{OrgId, Organization, StripeCustomerId};
use onboarding_domain::ports::{OrgRepo, RepoError};

use crate::dispatch::with_conn;
use crate::pool::Database;
use crate::rows::OrgRow;
use crate::schema::organizations;

#[async_trait]
impl OrgRepo for Database {
    async fn find(&self, id: &OrgId) -> Result<Option<Organization>, RepoError> {
        let row = with_conn!(self.pool, |conn| {
            organizations::table
                .find(id.as_str())
                .select(OrgRow::as_select())
                .first(conn)
                .await
                .optional()
        })?;
        row.map(Organization::try_from).transpose()
    }

    async fn find_by_stripe_customer(
        &self,
        customer: &StripeCustomerId,
    ) -> Result<Vec<Organization>, RepoError> {
        let rows = with_conn!(self.pool, |conn| {
            organizations::table
                .filter(organizations::stripe_customer_id.eq(customer.as_str()))
                .order((organizations::created_at.asc(), organizations::id.asc()))
                .select(OrgRow::as_select())
                .load(conn)
                .await
        })?;
        rows.into_iter().map(Organization::try_from).collect()
    }
}
