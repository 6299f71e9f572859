//! [`StripeClient`]: the domain's `StripeReader` port over Stripe's REST API. One pooled
//! `reqwest::Client`, and one attempt loop every read goes through: per-attempt timeout cut at
//! the caller's deadline, retries of 408/429/5xx and broken connections with full-jitter
//! backoff, `Retry-After` and `Stripe-Should-Retry` honoured.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use onboarding_adapters_http::{
    Answer, Attempt, ClientBuildError, Jitter, RetryHooks, Sleeper, Transient, clean,
    is_transient_status, millis, pooled_client, secret_header,
};
use onboarding_domain::model::{
    StripeCustomer, StripeCustomerId, StripeSubscription, StripeSubscriptionId,
};
use onboarding_domain::ports::{CallContext, StripeError, StripeReader};
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use reqwest::{StatusCode, Url};
use secrecy::ExposeSecret;

use crate::error::{error_for_status, is_resource_missing};
use crate::wire;
use crate::{STRIPE_API_VERSION, StripeConfig};

const STRIPE_VERSION: HeaderName = HeaderName::from_static("stripe-version");
const STRIPE_SHOULD_RETRY: HeaderName = HeaderName::from_static("stripe-should-retry");
const REQUEST_ID: HeaderName = HeaderName::from_static("request-id");
const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Longest detail of an unreadable answer passed on.
const MAX_DETAIL_CHARS: usize = 300;

/// Why a client could not be built. The message never contains the API key.
#[derive(Debug, thiserror::Error)]
pub enum StripeBuildError {
    #[error("invalid Stripe configuration: {0}")]
    InvalidConfig(String),
    #[error("cannot build the Stripe HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
}

impl From<ClientBuildError> for StripeBuildError {
    fn from(error: ClientBuildError) -> Self {
        match error {
            ClientBuildError::Config(message) => Self::InvalidConfig(message),
            ClientBuildError::Http(error) => Self::HttpClient(error),
        }
    }
}

/// Checks a Stripe API URL as the client will use it: http(s), with a host, no query or
/// fragment. Settings can check `STRIPE_API_URL` with this, so the two never disagree.
pub fn parse_api_url(raw: &str) -> Result<Url, StripeBuildError> {
    onboarding_adapters_http::parse_base_url(raw).map_err(StripeBuildError::InvalidConfig)
}

/// The Stripe read client. Clones are cheap and share the connection pool, so one instance
/// should serve the whole process.
///
/// `Debug` shows the configuration without the key.
#[derive(Clone)]
pub struct StripeClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    config: StripeConfig,
    api_url: Url,
    hooks: RetryHooks,
}

/// Builds a [`StripeClient`] with replaced parts (sleeper, jitter); the defaults are the real
/// ones.
pub struct StripeClientBuilder {
    config: StripeConfig,
    hooks: RetryHooks,
}

impl StripeClientBuilder {
    /// How the client waits between attempts. Default: Tokio's timer.
    pub fn sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.hooks.sleeper = sleeper;
        self
    }

    /// Where backoff randomness comes from. Default: uniform in `[0, ceiling]` (full jitter).
    pub fn jitter(mut self, jitter: Arc<dyn Jitter>) -> Self {
        self.hooks.jitter = jitter;
        self
    }

    pub fn build(self) -> Result<StripeClient, StripeBuildError> {
        let config = self.config;
        let api_url = parse_api_url(&config.api_url)?;
        if config.timeout.is_zero() {
            return Err(StripeBuildError::InvalidConfig(
                "timeout must be positive".into(),
            ));
        }
        let authorization = secret_header(&format!("Bearer {}", config.api_key.expose_secret()))
            .filter(|_| !config.api_key.expose_secret().trim().is_empty())
            .ok_or_else(|| {
                StripeBuildError::InvalidConfig(
                    "the Stripe API key is empty or has characters not allowed in an HTTP header"
                        .into(),
                )
            })?;
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, authorization);
        headers.insert(STRIPE_VERSION, HeaderValue::from_static(STRIPE_API_VERSION));
        headers.insert(ACCEPT, JSON);
        let http = pooled_client(headers, &config.user_agent)?;
        Ok(StripeClient {
            inner: Arc::new(Inner {
                http,
                config,
                api_url,
                hooks: self.hooks,
            }),
        })
    }
}

impl fmt::Debug for StripeClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeClientBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for StripeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeClient")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl StripeClient {
    /// A client with the real sleeper and jitter.
    pub fn new(config: StripeConfig) -> Result<Self, StripeBuildError> {
        Self::builder(config).build()
    }

    pub fn builder(config: StripeConfig) -> StripeClientBuilder {
        StripeClientBuilder {
            config,
            hooks: RetryHooks::default(),
        }
    }

    pub fn config(&self) -> &StripeConfig {
        &self.inner.config
    }

    /// `{api_url}/v1/{segments...}`, each segment percent-encoded.
    fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.inner.api_url.clone();
        // Cannot fail: parse_api_url refused cannot-be-a-base URLs.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().push("v1").extend(segments);
        }
        url
    }

    /// `GET url`: the body of a 2xx answer, `None` for Stripe's 404 `resource_missing`, else
    /// the error.
    async fn read(
        &self,
        operation: &'static str,
        url: Url,
        ctx: &CallContext,
    ) -> Result<Option<Vec<u8>>, StripeError> {
        let (answer, attempts) = self.execute(operation, &url, ctx).await?;
        if answer.status.is_success() {
            return Ok(Some(answer.body));
        }
        if is_resource_missing(answer.status, &answer.body) {
            return Ok(None);
        }
        Err(error_for_status(
            answer.status,
            &answer.body,
            attempts,
            self.api_key(),
        ))
    }

    /// The attempt loop. Returns the first final answer and the attempts it took, or
    /// `Unavailable`.
    async fn execute(
        &self,
        operation: &'static str,
        url: &Url,
        ctx: &CallContext,
    ) -> Result<(Answer, u32), StripeError> {
        let schedule = self.inner.config.retry_schedule();
        let max_attempts = schedule.attempts();
        // The cause of the last transient failure, reported if we give up.
        let mut last_cause: Option<String> = None;
        for attempt in 1..=max_attempts {
            let remaining = ctx.deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(StripeError::Unavailable {
                    attempts: attempt - 1,
                    cause: last_cause
                        .unwrap_or_else(|| "the deadline passed before the call was sent".into()),
                });
            }
            let budget = self.inner.config.timeout.min(remaining);
            let started = Instant::now();
            let outcome = self.attempt(url, budget).await;
            let duration_ms = millis(started.elapsed());
            let Transient {
                status,
                kind,
                cause,
                retry_after: hinted,
            } = match outcome {
                Attempt::Final(answer) => {
                    tracing::info!(
                        correlation_id = %ctx.correlation_id,
                        operation,
                        attempt,
                        status = answer.status.as_u16(),
                        duration_ms,
                        "Stripe call answered"
                    );
                    return Ok((answer, attempt));
                }
                Attempt::Transient(transient) => transient,
            };
            let next_sleep = schedule.next_delay(
                attempt,
                hinted,
                self.inner.hooks.jitter.as_ref(),
                ctx.deadline,
            );
            tracing::warn!(
                correlation_id = %ctx.correlation_id,
                operation,
                attempt,
                status,
                error_kind = kind,
                cause = %cause,
                duration_ms,
                retry_in_ms = next_sleep.map(millis),
                "Stripe call failed transiently"
            );
            let Some(delay) = next_sleep else {
                return Err(StripeError::Unavailable {
                    attempts: attempt,
                    cause,
                });
            };
            self.inner.hooks.sleeper.sleep(delay).await;
            last_cause = Some(cause);
        }
        // Unreachable: the last attempt either returns an answer or gives up above.
        Err(StripeError::Unavailable {
            attempts: max_attempts,
            cause: last_cause.unwrap_or_else(|| "no attempt made".into()),
        })
    }

    /// One attempt, cut at `budget` (connect, send and reading the whole answer). What is
    /// retried is [`should_retry`]'s call; a read is safe to repeat.
    async fn attempt(&self, url: &Url, budget: Duration) -> Attempt {
        let request = self.inner.http.get(url.clone());
        onboarding_adapters_http::attempt(request, budget, |status, headers| {
            if let Some(id) = headers.get(REQUEST_ID).and_then(|v| v.to_str().ok()) {
                tracing::debug!(request_id = id, status = status.as_u16(), "Stripe answered");
            }
            !status.is_success() && should_retry(status, headers)
        })
        .await
    }

    fn api_key(&self) -> &str {
        self.inner.config.api_key.expose_secret()
    }

    /// An answer we cannot read, in words that never carry the key.
    fn invalid(&self, detail: &str) -> StripeError {
        StripeError::InvalidResponse(clean(detail, MAX_DETAIL_CHARS, self.api_key()))
    }
}

/// Whether a failed answer is worth another attempt: Stripe's `Stripe-Should-Retry` when it
/// sent one (`true` or `false`), else 408, 429 and 5xx.
fn should_retry(status: StatusCode, headers: &HeaderMap) -> bool {
    let told = headers
        .get(STRIPE_SHOULD_RETRY)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| match v.trim() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        });
    told.unwrap_or_else(|| is_transient_status(status))
}

#[async_trait]
impl StripeReader for StripeClient {
    async fn subscription(
        &self,
        id: &StripeSubscriptionId,
        ctx: &CallContext,
    ) -> Result<Option<StripeSubscription>, StripeError> {
        let url = self.endpoint(&["subscriptions", id.as_str()]);
        let Some(body) = self.read("read_subscription", url, ctx).await? else {
            return Ok(None);
        };
        let subscription = wire::subscription(&body).map_err(|detail| self.invalid(&detail))?;
        if subscription.id != *id {
            return Err(self.invalid(&format!(
                "asked for subscription '{id}', Stripe answered '{}'",
                subscription.id
            )));
        }
        Ok(Some(subscription))
    }

    async fn customer(
        &self,
        id: &StripeCustomerId,
        ctx: &CallContext,
    ) -> Result<Option<StripeCustomer>, StripeError> {
        let url = self.endpoint(&["customers", id.as_str()]);
        let Some(body) = self.read("read_customer", url, ctx).await? else {
            return Ok(None);
        };
        let customer = wire::customer(&body).map_err(|detail| self.invalid(&detail))?;
        if customer.id != *id {
            return Err(self.invalid(&format!(
                "asked for customer '{id}', Stripe answered '{}'",
                customer.id
            )));
        }
        Ok(Some(customer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn status(code: u16) -> StatusCode {
        StatusCode::from_u16(code).unwrap_or_default()
    }

    #[test]
    fn stripe_should_retry_wins_over_the_status() {
        let none = HeaderMap::new();
        let yes = headers(&[("stripe-should-retry", "true")]);
        let no = headers(&[("stripe-should-retry", "false")]);
        let junk = headers(&[("stripe-should-retry", "maybe")]);
        assert!(should_retry(status(503), &none));
        assert!(should_retry(status(429), &junk));
        assert!(!should_retry(status(503), &no));
        assert!(should_retry(status(409), &yes));
        assert!(!should_retry(status(409), &none));
        assert!(!should_retry(status(400), &junk));
    }

    #[test]
    fn endpoints_encode_their_segments_and_keep_a_path_prefix() -> Result<(), StripeBuildError> {
        let client =
            StripeClient::new(StripeConfig::new("sk_test_x").with_api_url("http://h:1/proxy/"))?;
        assert_eq!(
            client.endpoint(&["subscriptions", "sub_1"]).as_str(),
            "http://h:1/proxy/v1/subscriptions/sub_1"
        );
        assert_eq!(
            client.endpoint(&["customers", "a/b?c"]).as_str(),
            "http://h:1/proxy/v1/customers/a%2Fb%3Fc"
        );
        let plain = StripeClient::new(StripeConfig::new("sk_test_x"))?;
        assert_eq!(
            plain.endpoint(&["customers", "cus_1"]).as_str(),
            "https://api.stripe.com/v1/customers/cus_1"
        );
        Ok(())
    }

    #[test]
    fn bad_settings_are_refused_without_showing_the_key() {
        let refused = |config: StripeConfig| StripeClient::new(config).err().map(|e| e.to_string());
        let empty = refused(StripeConfig::new(" "));
        assert!(empty.is_some_and(|e| e.contains("API key is empty")));
        let newline = refused(StripeConfig::new("sk_test_a\nb"));
        assert!(newline.is_some_and(|e| !e.contains("sk_test_a")));
        let ftp = refused(StripeConfig::new("sk_test_x").with_api_url("ftp://h"));
        assert!(ftp.is_some_and(|e| e.contains("must use http or https")));
        let mut zero = StripeConfig::new("sk_test_x");
        zero.timeout = Duration::ZERO;
        assert!(refused(zero).is_some_and(|e| e.contains("timeout")));
    }

    #[test]
    fn debug_never_prints_the_key() -> Result<(), StripeBuildError> {
        let key = "sk_live_51HnotForYourEyes";
        let client = StripeClient::new(StripeConfig::new(key))?;
        let builder = StripeClient::builder(StripeConfig::new(key));
        for shown in [
            format!("{client:?}"),
            format!("{client:#?}"),
            format!("{builder:?}"),
        ] {
            assert!(!shown.contains("notForYourEyes"), "{shown}");
            assert!(shown.contains("[redacted]"), "{shown}");
        }
        Ok(())
    }
}
