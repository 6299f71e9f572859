//! The Stigg rate-limit budget's families: time waited for a slot, refusals, and what the
//! last take saw left, by operation.

use onboarding_adapters_stigg::{BudgetEvent, Caller, Operation};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

/// Wait buckets, in seconds: from a free slot to a batch's turn in a long queue.
const WAIT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0,
];

const CALLERS: [Caller; 2] = [Caller::Interactive, Caller::Background];

pub(super) struct BudgetMetrics {
    wait: HistogramVec,
    refusals: IntCounterVec,
    left: IntGaugeVec,
}

impl BudgetMetrics {
    pub(super) fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let wait = HistogramVec::new(
            HistogramOpts::new(
                "onboarding_stigg_budget_wait_seconds",
                "Time a Stigg call waited for its rate-limit slot (granted or refused), by \
                 operation and caller (interactive: API requests; background: reconcile and \
                 the sync worker).",
            )
            .buckets(WAIT_BUCKETS.to_vec()),
            &["operation", "caller"],
        )?;
        let refusals = IntCounterVec::new(
            Opts::new(
                "onboarding_stigg_budget_refusals_total",
                "Stigg calls not sent because no rate-limit slot came before their deadline \
                 (or the shared budget did not answer), by operation and caller.",
            ),
            &["operation", "caller"],
        )?;
        let left = IntGaugeVec::new(
            Opts::new(
                "onboarding_stigg_budget_left",
                "Calls an operation could send at once, as this instance's last take of the \
                 budget saw it (0: every call waits its turn).",
            ),
            &["operation"],
        )?;
        registry.register(Box::new(wait.clone()))?;
        registry.register(Box::new(refusals.clone()))?;
        registry.register(Box::new(left.clone()))?;
        for operation in Operation::ALL {
            for caller in CALLERS {
                let labels = [operation.as_str(), caller.as_str()];
                wait.get_metric_with_label_values(&labels)?;
                refusals.get_metric_with_label_values(&labels)?;
            }
        }
        Ok(Self {
            wait,
            refusals,
            left,
        })
    }

    pub(super) fn observe(&self, event: BudgetEvent) {
        let labels = [event.operation.as_str(), event.caller.as_str()];
        if let Ok(histogram) = self.wait.get_metric_with_label_values(&labels) {
            histogram.observe(event.waited.as_secs_f64());
        }
        if !event.granted
            && let Ok(counter) = self.refusals.get_metric_with_label_values(&labels)
        {
            counter.inc();
        }
        let operation = [event.operation.as_str()];
        if let Some(left) = event.left
            && let Ok(gauge) = self.left.get_metric_with_label_values(&operation)
        {
            gauge.set(i64::from(left));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_take_is_counted_by_operation_and_caller() {
        let registry = Registry::new();
        let metrics = BudgetMetrics::register(&registry).expect("the families register");
        let op = Operation::ProvisionCustomer;
        metrics.observe(BudgetEvent {
            operation: op,
            caller: Caller::Background,
            waited: Duration::from_millis(300),
            granted: true,
            left: Some(4),
        });
        metrics.observe(BudgetEvent {
            operation: op,
            caller: Caller::Interactive,
            waited: Duration::ZERO,
            granted: false,
            left: None,
        });
        let count = |caller: &str| {
            metrics
                .refusals
                .with_label_values(&[op.as_str(), caller])
                .get()
        };
        assert_eq!((count("interactive"), count("background")), (1, 0));
        let waits = metrics.wait.with_label_values(&[op.as_str(), "background"]);
        assert_eq!(waits.get_sample_count(), 1);
        assert!((waits.get_sample_sum() - 0.3).abs() < 1e-9);
        // A refusal leaves the last seen figure.
        assert_eq!(metrics.left.with_label_values(&[op.as_str()]).get(), 4);
        // Every operation's series exist from the start.
        let families = registry.gather();
        let refusals = families
            .iter()
            .find(|f| f.name() == "onboarding_stigg_budget_refusals_total");
        assert_eq!(
            refusals.map(|f| f.get_metric().len()),
            Some(Operation::ALL.len() * 2)
        );
    }
}
