//! Prometheus metrics: one [`Registry`] per application instance, the metric families of the
//! service, and the Stigg adapter's [`CallObserver`] that feeds them.
//!
//! The registry is created with the services and handed down; nothing is registered in the
//! process-global registry, so several instances (tests) can run in one process.

mod budget;

use std::time::Duration;

use actix_web::http::{Method, StatusCode};
use onboarding_adapters_stigg::{BudgetEvent, CallEvent, CallObserver, CallOutcome, Operation};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::build_info;
use crate::failure::ErrorCode;

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// The `route` label of a request that matched no route (404 of the default service).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Latency buckets, in seconds. They reach past the provisioning deadline (15 s by default),
/// so a request that ran into it still lands in a finite bucket.
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0,
];

/// Every outcome the adapter reports; used to create the Stigg series up front.
const CALL_OUTCOMES: [CallOutcome; 4] = [
    CallOutcome::Success,
    CallOutcome::Retried,
    CallOutcome::RateLimited,
    CallOutcome::Failed,
];

/// The `outcome` labels of a request a use case's handler refused or failed: the class of
/// what the caller was told, the same for every use case (see [`OutcomeCounter::refused`]).
const REFUSED_OUTCOMES: [&str; 3] = ["bad_request", "not_found", "failed"];

/// A use case's outcome counter: its name and help, and its own words for a success. The
/// refusals and failures are labelled from the answer's [`ErrorCode`], so a use case never
/// restates them; the next one is a constant like [`PROVISIONINGS`] and a field of
/// [`Metrics`].
pub struct OutcomeFamily {
    pub name: &'static str,
    pub help: &'static str,
    pub successes: &'static [&'static str],
}

/// Provisioned in Stigg by this request.
pub const PROVISIONED: &str = "provisioned";
/// Answered from the stored record; Stigg was not called.
pub const ALREADY_PROVISIONED: &str = "already_provisioned";

/// `POST /api/stigg/provision` requests that reached the handler.
pub const PROVISIONINGS: OutcomeFamily = OutcomeFamily {
    name: "onboarding_provisionings_total",
    help: "POST /api/stigg/provision requests that reached the handler, by outcome.",
    successes: &[PROVISIONED, ALREADY_PROVISIONED],
};

/// The counter of one [`OutcomeFamily`], every series created at zero.
pub struct OutcomeCounter(IntCounterVec);

impl OutcomeCounter {
    fn register(registry: &Registry, family: &OutcomeFamily) -> Result<Self, prometheus::Error> {
        let counter = IntCounterVec::new(Opts::new(family.name, family.help), &["outcome"])?;
        registry.register(Box::new(counter.clone()))?;
        for outcome in family.successes.iter().chain(&REFUSED_OUTCOMES) {
            counter.get_metric_with_label_values(&[outcome])?;
        }
        Ok(Self(counter))
    }

    /// Counts a success, by one of its family's `successes`.
    pub fn done(&self, outcome: &'static str) {
        self.count(outcome);
    }

    /// Counts a refusal or a failure by the code of the answer: 400 `bad_request`, 404
    /// `not_found`, anything else `failed`.
    pub fn refused(&self, code: ErrorCode) {
        self.count(match code {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::NotFound => "not_found",
            _ => "failed",
        });
    }

    fn count(&self, outcome: &str) {
        if let Ok(counter) = self.0.get_metric_with_label_values(&[outcome]) {
            counter.inc();
        }
    }
}

/// The event types the sync handles get their own label; the rest are `other`, so that a
/// sender cannot create series at will.
fn event_type_label(event_type: Option<&str>) -> &'static str {
    match event_type {
        None => "unreadable",
        Some(t) => onboarding_domain::model::handled_event_type(t).unwrap_or("other"),
    }
}

/// Sync lag buckets, in seconds: from a prompt apply to a retried one.
const LAG_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0,
];

/// The lifecycle sync's families.
struct SyncMetrics {
    events: IntCounterVec,
    lag: prometheus::Histogram,
    moves: IntCounterVec,
    inbox: IntGaugeVec,
}

impl SyncMetrics {
    fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let events = IntCounterVec::new(
            Opts::new(
                "onboarding_stripe_events_total",
                "Stripe webhook deliveries and event settlements, by event type and outcome: \
                 pending (stored, to be handled), duplicate, ignored, failed (stored failed, or \
                 given up), invalid_signature, bad_request, applied, retried.",
            ),
            &["type", "outcome"],
        )?;
        let lag = prometheus::Histogram::with_opts(
            HistogramOpts::new(
                "onboarding_stripe_sync_lag_seconds",
                "From an event's delivery to Stigg matching Stripe (the event applied).",
            )
            .buckets(LAG_BUCKETS.to_vec()),
        )?;
        let moves = IntCounterVec::new(
            Opts::new(
                "onboarding_stigg_moves_total",
                "Stigg calls the sync made, by call and outcome (ok, failed).",
            ),
            &["call", "outcome"],
        )?;
        let inbox = IntGaugeVec::new(
            Opts::new(
                "onboarding_stripe_events",
                "Stored Stripe events waiting (pending) or given up (failed), as last counted.",
            ),
            &["status"],
        )?;
        for family in [&events, &moves] {
            registry.register(Box::new(family.clone()))?;
        }
        registry.register(Box::new(lag.clone()))?;
        registry.register(Box::new(inbox.clone()))?;
        for status in ["pending", "failed"] {
            inbox.get_metric_with_label_values(&[status])?;
        }
        Ok(Self {
            events,
            lag,
            moves,
            inbox,
        })
    }
}

/// The service's metrics and the registry they live in.
pub struct Metrics {
    sync: SyncMetrics,
    budget: budget::BudgetMetrics,
    registry: Registry,
    http_requests: IntCounterVec,
    http_latency: HistogramVec,
    stigg_calls: IntCounterVec,
    stigg_latency: HistogramVec,
    provisionings: OutcomeCounter,
    debug_log_rows_dropped: IntCounter,
}

impl Metrics {
    /// A fresh registry with every family registered. The Stigg and outcome counters are
    /// created at zero, so that `rate()` and alerts see them before the first event.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new(
                "onboarding_http_requests_total",
                "HTTP requests answered, by method, matched route pattern and status.",
            ),
            &["method", "route", "status"],
        )?;
        let http_latency = HistogramVec::new(
            HistogramOpts::new(
                "onboarding_http_request_duration_seconds",
                "Time from receiving a request to its response, by method and route pattern.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["method", "route"],
        )?;
        let stigg_calls = IntCounterVec::new(
            Opts::new(
                "onboarding_stigg_calls_total",
                "Stigg calls by operation and outcome. `retried` counts failed attempts that \
                 were retried; the others count finished calls.",
            ),
            &["operation", "outcome"],
        )?;
        let stigg_latency = HistogramVec::new(
            HistogramOpts::new(
                "onboarding_stigg_call_duration_seconds",
                "Stigg call latency by operation and outcome: the whole call (retries, backoff \
                 and rate-limit waits included), or the failed attempt for `retried`.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["operation", "outcome"],
        )?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_latency.clone()))?;
        registry.register(Box::new(stigg_calls.clone()))?;
        registry.register(Box::new(stigg_latency.clone()))?;
        let debug_log_rows_dropped = IntCounter::new(
            "onboarding_debug_log_rows_dropped_total",
            "Debug-log rows the database refused on their own (their batch written without \
             them); each is logged in full instead.",
        )?;
        let provisionings = OutcomeCounter::register(&registry, &PROVISIONINGS)?;
        registry.register(Box::new(debug_log_rows_dropped.clone()))?;
        // The registry keeps the one series; nothing changes it afterwards.
        let build = IntGaugeVec::new(
            Opts::new(
                "onboarding_build_info",
                "Always 1; the labels say which build is running: version, commit (short hash, \
                 `-dirty` when built from a changed tree, `unknown` without git) and build date \
                 (UTC).",
            ),
            &["version", "commit", "build_date"],
        )?;
        registry.register(Box::new(build.clone()))?;
        build
            .get_metric_with_label_values(&[
                build_info::VERSION,
                build_info::COMMIT,
                build_info::BUILD_DATE,
            ])?
            .set(1);

        // Touching a series creates it at zero.
        for operation in Operation::ALL {
            for outcome in CALL_OUTCOMES {
                let labels = [operation.as_str(), outcome.as_str()];
                stigg_calls.get_metric_with_label_values(&labels)?;
                stigg_latency.get_metric_with_label_values(&labels)?;
            }
        }

        let sync = SyncMetrics::register(&registry)?;
        let budget = budget::BudgetMetrics::register(&registry)?;
        Ok(Self {
            budget,
            sync,
            registry,
            http_requests,
            http_latency,
            stigg_calls,
            stigg_latency,
            provisionings,
            debug_log_rows_dropped,
        })
    }

    /// The counter the debug-log writer increments for a row it had to drop.
    pub fn debug_log_rows_dropped(&self) -> IntCounter {
        self.debug_log_rows_dropped.clone()
    }

    /// Counts one answered HTTP request. `route` is the matched pattern, or
    /// [`UNMATCHED_ROUTE`].
    pub fn observe_request(
        &self,
        method: &Method,
        route: &str,
        status: StatusCode,
        elapsed: Duration,
    ) {
        let method = method_label(method);
        if let Ok(counter) =
            self.http_requests
                .get_metric_with_label_values(&[method, route, status.as_str()])
        {
            counter.inc();
        }
        if let Ok(histogram) = self
            .http_latency
            .get_metric_with_label_values(&[method, route])
        {
            histogram.observe(elapsed.as_secs_f64());
        }
    }

    /// The outcomes of `POST /api/stigg/provision`.
    pub fn provisionings(&self) -> &OutcomeCounter {
        &self.provisionings
    }

    /// Counts a webhook delivery or an event's settlement.
    pub fn stripe_event(&self, event_type: Option<&str>, outcome: &str) {
        if let Ok(counter) = self
            .sync
            .events
            .get_metric_with_label_values(&[event_type_label(event_type), outcome])
        {
            counter.inc();
        }
    }

    /// One event applied `lag` after its delivery.
    pub fn sync_lag(&self, lag: Duration) {
        self.sync.lag.observe(lag.as_secs_f64());
    }

    /// One Stigg call the sync made.
    pub fn stigg_move(&self, call: &str, ok: bool) {
        let outcome = if ok { "ok" } else { "failed" };
        if let Ok(counter) = self
            .sync
            .moves
            .get_metric_with_label_values(&[call, outcome])
        {
            counter.inc();
        }
    }

    /// The inbox's counts, as last read.
    pub fn inbox_counts(&self, pending: u64, failed: u64) {
        for (status, count) in [("pending", pending), ("failed", failed)] {
            if let Ok(gauge) = self.sync.inbox.get_metric_with_label_values(&[status]) {
                gauge.set(i64::try_from(count).unwrap_or(i64::MAX));
            }
        }
    }

    /// Every family in the Prometheus text format.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        String::from_utf8(buffer).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

impl CallObserver for Metrics {
    fn observe(&self, event: CallEvent) {
        let labels = [event.operation.as_str(), event.outcome.as_str()];
        if let Ok(counter) = self.stigg_calls.get_metric_with_label_values(&labels) {
            counter.inc();
        }
        if let Ok(histogram) = self.stigg_latency.get_metric_with_label_values(&labels) {
            histogram.observe(event.latency.as_secs_f64());
        }
    }

    fn budget(&self, event: BudgetEvent) {
        self.budget.observe(event);
    }
}

/// The method as a label. Extension methods are folded into `other`, so that a client cannot
/// create series at will.
fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> Metrics {
        Metrics::new().unwrap()
    }

    fn render(metrics: &Metrics) -> String {
        metrics.render().unwrap()
    }

    #[test]
    fn extension_methods_share_one_label() {
        let metrics = metrics();
        for method in ["PURGE", "BREW"] {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            metrics.observe_request(&method, "/x", StatusCode::OK, Duration::ZERO);
        }
        let text = render(&metrics);
        assert!(
            text.contains(
                r#"onboarding_http_requests_total{method="other",route="/x",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(!text.contains("PURGE"), "{text}");
    }

    #[test]
    fn every_stigg_series_exists_from_the_start() {
        let text = render(&metrics());
        for operation in Operation::ALL {
            for outcome in CALL_OUTCOMES {
                let series = format!(
                    r#"onboarding_stigg_calls_total{{operation="{operation}",outcome="{}"}} 0"#,
                    outcome.as_str()
                );
                assert!(text.contains(&series), "{series} missing from {text}");
            }
        }
    }

    #[test]
    fn every_outcome_series_exists_from_the_start_and_refusals_are_classed_by_code() {
        let metrics = metrics();
        metrics.provisionings().done(ALREADY_PROVISIONED);
        metrics.provisionings().refused(ErrorCode::NotFound);
        metrics.provisionings().refused(ErrorCode::Internal);
        let text = render(&metrics);
        for (outcome, count) in [
            ("provisioned", 0),
            ("already_provisioned", 1),
            ("bad_request", 0),
            ("not_found", 1),
            ("failed", 1),
        ] {
            let series =
                format!(r#"onboarding_provisionings_total{{outcome="{outcome}"}} {count}"#);
            assert!(text.contains(&series), "{series} missing from {text}");
        }
    }

    #[test]
    fn the_build_is_a_series_of_its_own() {
        let text = render(&metrics());
        let series = format!(
            r#"onboarding_build_info{{build_date="{}",commit="{}",version="{}"}} 1"#,
            build_info::BUILD_DATE,
            build_info::COMMIT,
            build_info::VERSION,
        );
        assert!(text.contains(&series), "{series} missing from {text}");
        assert!(
            text.contains("# TYPE onboarding_build_info gauge"),
            "{text}"
        );
    }

    #[test]
    fn instances_do_not_share_counts() {
        let (first, second) = (metrics(), metrics());
        first.observe(CallEvent {
            operation: Operation::ProvisionCustomer,
            outcome: CallOutcome::Retried,
            latency: Duration::from_millis(30),
        });
        let retried =
            r#"onboarding_stigg_calls_total{operation="provision_customer",outcome="retried"}"#;
        assert!(render(&first).contains(&format!("{retried} 1")));
        assert!(render(&second).contains(&format!("{retried} 0")));
    }
}
