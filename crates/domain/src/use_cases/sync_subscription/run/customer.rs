//! A deleted Stripe customer: its organizations' Stigg customers archived.

use super::{ARCHIVE, SyncError, SyncFailed, SyncSubscription, Synced};
use crate::model::{Lease, Move, StripeCustomerId, archive_key};
use crate::ports::StiggError;
use crate::use_cases::OperationContext;
use crate::use_cases::sync_subscription::customer_move;
use tracing::info;

impl SyncSubscription {
    /// Archives the Stigg customer of the organization billed as `id` once Stripe deleted
    /// it; nothing when Stripe still has it or no provisioned organization is billed so.
    pub async fn customer(
        &self,
        lease: &Lease,
        id: &StripeCustomerId,
        ctx: &OperationContext,
    ) -> Result<Synced, SyncFailed> {
        let mut run = self.start(lease, ctx);
        let customer = self
            .ports
            .stripe
            .customer(id, &run.call)
            .await
            .map_err(SyncError::from)?
            .ok_or_else(|| SyncError::Refused(format!("Stripe has no customer '{id}'")))?;
        let orgs = self
            .ports
            .orgs
            .find_by_stripe_customer(id)
            .await
            .map_err(SyncError::from)?;
        // Every organization billed as this customer: each has a Stigg customer of its own.
        for org in orgs {
            let ever = self
                .ports
                .provisioning
                .customer(&org.id)
                .await
                .map_err(|e| self.failed_after(&run, e.into(), None))?
                .is_some();
            let Some(Move::ArchiveCustomer { customer_id }) =
                customer_move(&customer, &org.id, ever)
            else {
                continue;
            };
            self.renew(&run)
                .await
                .map_err(|e| self.failed_after(&run, e, None))?;
            let archived = self
                .ports
                .lifecycle
                .archive_customer(&customer_id, &archive_key(&customer_id), &run.call)
                .await;
            match archived {
                // Gone from Stigg already: what the archive asks for.
                Ok(()) | Err(StiggError::CustomerNotFound { .. }) => {}
                Err(error) => return Err(self.failed_after(&run, error.into(), Some(ARCHIVE))),
            }
            info!(org_id = %customer_id, "Stigg customer archived after Stripe deleted the customer");
            run.moves.push(self.record(ARCHIVE, customer_id.as_str()));
        }
        Ok(Synced { moves: run.moves })
    }
}
