//! Organizations take turns, so that one run creates each customer once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures::lock::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::model::OrgId;

/// Subscriptions of one organization take turns. The first creates the organization's
/// customer in Stigg and records it; the next ones find it recorded. Run side by side, each
/// would create it (idempotently, but spending a call of the rate limit and of the
/// customer's own Stigg quota every time).
#[derive(Default)]
pub(super) struct OrgTurns {
    /// An entry lives while someone holds or waits for the organization's turn.
    turns: Mutex<HashMap<OrgId, Arc<AsyncMutex<()>>>>,
}

/// The turn of one organization, given back on drop.
pub(super) struct Turn<'a> {
    turns: &'a OrgTurns,
    org: OrgId,
    guard: Option<OwnedMutexGuard<()>>,
}

impl OrgTurns {
    pub(super) async fn take(&self, org: &OrgId) -> Turn<'_> {
        let turn = Arc::clone(
            self.turns
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(org.clone())
                .or_default(),
        );
        Turn {
            turns: self,
            org: org.clone(),
            guard: Some(turn.lock_owned().await),
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        // Forget the organization once nobody holds or waits for its turn, so a long run
        // keeps no entry per organization it has seen.
        let mut turns = self
            .turns
            .turns
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if turns
            .get(&self.org)
            .is_some_and(|turn| Arc::strong_count(turn) == 1)
        {
            turns.remove(&self.org);
        }
    }
}
