//! The backlog read page by page, as a stream of items.

use std::collections::VecDeque;

use tracing::warn;

use super::{Halt, Next, StopSignal};
use crate::ports::{PendingProvisioning, ProvisioningBacklog};

/// Where the backlog stream stands.
pub(super) struct Cursor {
    /// Key of the last item read: the next page starts after it.
    after: Option<String>,
    buffer: VecDeque<PendingProvisioning>,
    /// The last page was short: nothing is left to read.
    exhausted: bool,
    /// The stream has ended.
    finished: bool,
    /// Items still allowed by the limit.
    remaining: Option<usize>,
}

impl Cursor {
    /// At the start of the backlog, allowing `limit` items at most.
    pub(super) fn new(limit: Option<usize>) -> Self {
        Self {
            after: None,
            buffer: VecDeque::new(),
            exhausted: false,
            finished: false,
            remaining: limit,
        }
    }

    pub(super) async fn next(
        &mut self,
        backlog: &dyn ProvisioningBacklog,
        page_size: usize,
        stop: &dyn StopSignal,
    ) -> Option<Next> {
        if self.finished {
            return None;
        }
        if self.remaining == Some(0) {
            return self.finish(None);
        }
        if self.buffer.is_empty() {
            if self.exhausted {
                return self.finish(None);
            }
            if stop.is_stopped() {
                return self.finish(Some(Halt::Stopped));
            }
            let want = self.remaining.map_or(page_size, |left| left.min(page_size));
            match backlog.pending_page(self.after.clone(), want).await {
                Ok(mut page) => {
                    self.exhausted = page.len() < want;
                    page.truncate(want);
                    if let Some(last) = page.last() {
                        self.after = Some(last.key.clone());
                    }
                    self.buffer.extend(page);
                }
                Err(error) => {
                    warn!(%error, "cannot read the pending subscriptions; finishing the items in flight");
                    return self.finish(Some(Halt::StoreFailed(error.to_string())));
                }
            }
            if self.buffer.is_empty() {
                return self.finish(None);
            }
        }
        if stop.is_stopped() {
            return self.finish(Some(Halt::Stopped));
        }
        let item = self.buffer.pop_front()?;
        if let Some(left) = &mut self.remaining {
            *left -= 1;
        }
        Some(Ok(item))
    }

    fn finish(&mut self, halt: Option<Halt>) -> Option<Next> {
        self.finished = true;
        halt.map(Err)
    }
}
