//! The HTTP side: one pooled `reqwest::Client`, and the attempt loop that every call goes
//! through (rate limit, per-attempt timeout, classification, backoff, logging, observer).

use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) use onboarding_adapters_http::Answer;
use onboarding_adapters_http::{
    Attempt, ClientBuildError, RetryHooks, Transient, is_transient_status, millis, pooled_client,
    secret_header,
};
use onboarding_domain::ports::{CallContext, StiggError};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use secrecy::{ExposeSecret, SecretString};

use crate::budget::SharedBudget;
use crate::entity_limit::Entity;
use crate::error::error_for_status;
use crate::observer::{BudgetEvent, CallEvent, CallObserver, CallOutcome};
use crate::rate_limit::{Caller, RateLimiters, Refusal};
use crate::{Operation, StiggConfig};

const API_KEY: HeaderName = HeaderName::from_static("x-api-key");
const CORRELATION_ID: HeaderName = HeaderName::from_static("x-correlation-id");
const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// One request, built once and sent unchanged by every attempt (same idempotency key, same
/// body), so a retried create can never make a second entity.
#[derive(Debug)]
pub(crate) struct HttpRequest {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) idempotency_key: Option<HeaderValue>,
    pub(crate) body: Option<Vec<u8>>,
    /// The customer or subscription a mutation changes, whose per-entity budget each of its
    /// attempts draws from; `None` for reads.
    pub(crate) entity: Option<Entity>,
}

pub(crate) struct StiggClient {
    http: reqwest::Client,
    config: StiggConfig,
    limiters: RateLimiters,
    hooks: RetryHooks,
    observer: Arc<dyn CallObserver>,
}

impl StiggClient {
    pub(crate) fn new(
        config: StiggConfig,
        hooks: RetryHooks,
        observer: Arc<dyn CallObserver>,
        shared_budget: Option<Arc<dyn SharedBudget>>,
    ) -> Result<Self, ClientBuildError> {
        let limiters = RateLimiters::for_config(&config, shared_budget)
            .map_err(|why| ClientBuildError::Config(why.into()))?;
        if config.attempt_timeout.is_zero() {
            return Err(ClientBuildError::Config(
                "attempt_timeout must be positive".into(),
            ));
        }
        let api_key = secret_header(config.api_key.expose_secret())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                ClientBuildError::Config(
                    "the Stigg API key is empty or has characters not allowed in an HTTP header"
                        .into(),
                )
            })?;
        let mut headers = HeaderMap::new();
        headers.insert(API_KEY, api_key);
        headers.insert(CONTENT_TYPE, JSON);
        headers.insert(ACCEPT, JSON);
        let http = pooled_client(headers, &config.user_agent)?;
        Ok(Self {
            http,
            config,
            limiters,
            hooks,
            observer,
        })
    }

    pub(crate) fn config(&self) -> &StiggConfig {
        &self.config
    }

    fn api_key(&self) -> &SecretString {
        &self.config.api_key
    }

    /// The error for a final answer that `interpret` does not accept.
    pub(crate) fn error_for(&self, operation: Operation, answer: &Answer) -> StiggError {
        error_for_status(
            operation,
            answer.status,
            &answer.body,
            self.api_key().expose_secret(),
        )
    }

    /// Sends `request` until it gets a final answer (or gives up), turns that answer into a
    /// result with `interpret`, and reports the outcome to the observer.
    pub(crate) async fn call<T>(
        &self,
        operation: Operation,
        request: &HttpRequest,
        ctx: &CallContext,
        caller: Caller,
        interpret: impl FnOnce(Answer) -> Result<T, StiggError> + Send,
    ) -> Result<T, StiggError> {
        let started = Instant::now();
        let result = match self.execute(operation, request, ctx, caller).await {
            Ok(answer) => interpret(answer),
            Err(error) => Err(error),
        };
        let outcome = match &result {
            Ok(_) => CallOutcome::Success,
            Err(StiggError::RateLimited) => CallOutcome::RateLimited,
            Err(_) => CallOutcome::Failed,
        };
        self.observer.observe(CallEvent {
            operation,
            outcome,
            latency: started.elapsed(),
        });
        result
    }

    /// The attempt loop. Returns the first final answer, or `RateLimited` / `Unavailable`.
    async fn execute(
        &self,
        operation: Operation,
        request: &HttpRequest,
        ctx: &CallContext,
        caller: Caller,
    ) -> Result<Answer, StiggError> {
        let schedule = self.config.retry_schedule();
        let max_attempts = schedule.attempts();
        // The cause of the last transient failure, reported if we give up.
        let mut last_cause: Option<String> = None;
        for attempt in 1..=max_attempts {
            let made = attempt - 1;
            if let Err(refused) = self
                .take_slot(operation, request, ctx, caller, attempt)
                .await
            {
                // Before any attempt a refusal is the story; after transient failures the real
                // story is the failure that made us retry.
                return Err(match (refused, last_cause) {
                    (StiggError::RateLimited, Some(cause)) => StiggError::Unavailable {
                        attempts: made,
                        cause,
                    },
                    (refused, _) => refused,
                });
            }
            let remaining = ctx.deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                // "Unavailable" only for a Stigg that was tried: a call never sent says so.
                return Err(match last_cause {
                    None => StiggError::DeadlinePassed,
                    Some(cause) => StiggError::Unavailable {
                        attempts: made,
                        cause,
                    },
                });
            }
            let budget = self.config.attempt_timeout.min(remaining);
            let started = Instant::now();
            let outcome = self.attempt(request, ctx, budget).await;
            let duration_ms = millis(started.elapsed());

            let Transient {
                status,
                kind,
                cause,
                retry_after: hinted,
            } = match outcome {
                Attempt::Final(answer) => {
                    let status = answer.status.as_u16();
                    if answer.status.is_success() || status == 409 {
                        tracing::info!(
                            correlation_id = %ctx.correlation_id,
                            operation = operation.as_str(),
                            attempt,
                            status,
                            duration_ms,
                            "Stigg call answered"
                        );
                    } else {
                        tracing::warn!(
                            correlation_id = %ctx.correlation_id,
                            operation = operation.as_str(),
                            attempt,
                            status,
                            duration_ms,
                            "Stigg call refused"
                        );
                    }
                    return Ok(answer);
                }
                Attempt::Transient(transient) => transient,
            };

            let next_sleep =
                schedule.next_delay(attempt, hinted, self.hooks.jitter.as_ref(), ctx.deadline);
            tracing::warn!(
                correlation_id = %ctx.correlation_id,
                operation = operation.as_str(),
                attempt,
                status,
                error_kind = kind,
                cause = %cause,
                duration_ms,
                retry_in_ms = next_sleep.map(millis),
                "Stigg call failed transiently"
            );
            let Some(delay) = next_sleep else {
                return Err(StiggError::Unavailable {
                    attempts: attempt,
                    cause,
                });
            };
            self.observer.observe(CallEvent {
                operation,
                outcome: CallOutcome::Retried,
                latency: started.elapsed(),
            });
            self.hooks.sleeper.sleep(delay).await;
            last_cause = Some(cause);
        }
        // Unreachable: the last attempt either returns an answer or gives up above.
        Err(StiggError::Unavailable {
            attempts: max_attempts,
            cause: last_cause.unwrap_or_else(|| "no attempt made".into()),
        })
    }

    /// Takes the attempt's rate-limit slot (waiting for it), and reports the take to the
    /// observer; `RateLimited` when the slot comes after the deadline, `Unavailable` when the
    /// shared budget does not answer. Nothing is sent either way.
    async fn take_slot(
        &self,
        operation: Operation,
        request: &HttpRequest,
        ctx: &CallContext,
        caller: Caller,
        attempt: u32,
    ) -> Result<(), StiggError> {
        let asked = Instant::now();
        let granted = self
            .limiters
            .acquire(
                operation,
                request.entity.as_ref(),
                caller,
                ctx.deadline,
                self.hooks.sleeper.as_ref(),
            )
            .await;
        self.observer.budget(BudgetEvent {
            operation,
            caller,
            waited: asked.elapsed(),
            granted: granted.is_ok(),
            left: granted.as_ref().ok().map(|granted| granted.left),
        });
        match granted {
            Ok(_) => Ok(()),
            Err(Refusal::Deadline(refused)) => {
                tracing::warn!(
                    correlation_id = %ctx.correlation_id,
                    operation = operation.as_str(),
                    caller = caller.as_str(),
                    attempt,
                    error_kind = "rate_limited",
                    limit = refused.limit.as_str(),
                    wait_ms = millis(refused.wait),
                    "Stigg call not sent: the client-side rate limit would outlast the deadline"
                );
                Err(StiggError::RateLimited)
            }
            Err(Refusal::Store(error)) => {
                tracing::error!(
                    correlation_id = %ctx.correlation_id,
                    operation = operation.as_str(),
                    caller = caller.as_str(),
                    attempt,
                    error_kind = "budget_unavailable",
                    error = %error,
                    "Stigg call not sent: the shared budget did not answer"
                );
                Err(StiggError::Unavailable {
                    attempts: attempt - 1,
                    cause: error.to_string(),
                })
            }
        }
    }

    /// One attempt, cut at `budget` (connect, send and reading the whole answer). A 408, 429
    /// or 5xx is retried; a success whose body was cut is asked again, which the same
    /// idempotency key makes safe for a create.
    async fn attempt(&self, request: &HttpRequest, ctx: &CallContext, budget: Duration) -> Attempt {
        let mut builder = self
            .http
            .request(request.method.clone(), request.url.clone());
        if let Ok(correlation_id) = HeaderValue::from_str(ctx.correlation_id.as_str()) {
            builder = builder.header(CORRELATION_ID, correlation_id);
        }
        if let Some(key) = &request.idempotency_key {
            builder = builder.header(IDEMPOTENCY_KEY, key.clone());
        }
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        onboarding_adapters_http::attempt(builder, budget, |status, _| is_transient_status(status))
            .await
    }
}
