//! How to reach Stigg and how hard to try: [`StiggConfig`] and its defaults.

use std::fmt;
use std::time::Duration;

use onboarding_adapters_http::RetrySchedule;
pub use onboarding_adapters_http::shown_url;
use secrecy::SecretString;

/// Stigg's production REST base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.stigg.io";
/// Longest a single attempt may take (connect, send and read the whole answer).
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts per call, the first one included.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// First backoff ceiling; it doubles after every failed attempt.
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_millis(200);
/// Highest backoff ceiling.
pub const DEFAULT_BACKOFF_CAP: Duration = Duration::from_secs(5);
/// Stigg's documented limit for each provisioning mutation.
pub const DEFAULT_CALLS_PER_MINUTE: u32 = 250;
/// Stigg's documented limit of mutations on one customer, and on one subscription.
pub const DEFAULT_MUTATIONS_PER_ENTITY_PER_MINUTE: u32 = 30;
/// Percent of each operation's quota kept for API requests.
pub const DEFAULT_INTERACTIVE_SHARE_PERCENT: u8 = 20;

/// The `User-Agent` sent unless configured otherwise: the service and this crate's version.
pub fn default_user_agent() -> String {
    format!("onboarding/{}", env!("CARGO_PKG_VERSION"))
}

/// Settings of the Stigg adapter. Build it with [`StiggConfig::new`] and adjust fields.
///
/// `Debug` never shows the API key.
#[derive(Clone)]
pub struct StiggConfig {
    /// e.g. `https://api.stigg.io`; `/api/v1/...` is appended. A path prefix is kept.
    pub base_url: String,
    /// Sent as `X-API-KEY`; never logged, never put in an error.
    pub api_key: SecretString,
    /// Per-attempt timeout; an attempt is also cut at the call's deadline.
    pub attempt_timeout: Duration,
    /// Attempts per call (first one included); 0 is treated as 1.
    pub max_attempts: u32,
    /// Full-jitter backoff: after failed attempt `n` the sleep is random in
    /// `[0, min(backoff_cap, backoff_base * 2^(n-1))]`.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Client-side budget of each [`Operation`](crate::Operation), in calls (attempts) per
    /// minute. Must be at least 1.
    pub calls_per_minute: u32,
    /// Client-side budget of mutations (attempts) on one customer, and on one subscription,
    /// per minute, whatever the operation. Must be at least 1.
    pub mutations_per_entity_per_minute: u32,
    /// Percent of each operation's `calls_per_minute` kept for API requests
    /// ([`Caller::Interactive`](crate::Caller)); batches use it only while it is idle. Below
    /// 100.
    pub interactive_share_percent: u8,
    pub user_agent: String,
}

impl StiggConfig {
    /// A configuration with the contract's defaults: 5 s per attempt, 3 attempts, backoff
    /// 200 ms doubling up to 5 s, 250 calls per minute per operation (20 % of them kept for
    /// API requests), 30 mutations per minute per customer or subscription.
    pub fn new(base_url: impl Into<String>, api_key: impl Into<SecretString>) -> Self {
        Self {
            base_url: base_url.into(),
            api_key: api_key.into(),
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            backoff_base: DEFAULT_BACKOFF_BASE,
            backoff_cap: DEFAULT_BACKOFF_CAP,
            calls_per_minute: DEFAULT_CALLS_PER_MINUTE,
            mutations_per_entity_per_minute: DEFAULT_MUTATIONS_PER_ENTITY_PER_MINUTE,
            interactive_share_percent: DEFAULT_INTERACTIVE_SHARE_PERCENT,
            user_agent: default_user_agent(),
        }
    }

    /// Attempts and backoff, as the shared attempt schedule takes them.
    pub(crate) fn retry_schedule(&self) -> RetrySchedule {
        RetrySchedule {
            max_attempts: self.max_attempts,
            backoff_base: self.backoff_base,
            backoff_cap: self.backoff_cap,
        }
    }
}

impl fmt::Debug for StiggConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StiggConfig")
            .field("base_url", &shown_url(&self.base_url))
            .field("api_key", &"[redacted]")
            .field("attempt_timeout", &self.attempt_timeout)
            .field("max_attempts", &self.max_attempts)
            .field("backoff_base", &self.backoff_base)
            .field("backoff_cap", &self.backoff_cap)
            .field("calls_per_minute", &self.calls_per_minute)
            .field(
                "mutations_per_entity_per_minute",
                &self.mutations_per_entity_per_minute,
            )
            .field("interactive_share_percent", &self.interactive_share_percent)
            .field("user_agent", &self.user_agent)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_applies_the_contract_defaults() {
        let config = StiggConfig::new("http://localhost", "server-secret");
        assert_eq!(config.attempt_timeout, Duration::from_secs(5));
        assert_eq!(config.max_attempts, 3);
        assert_eq!(config.backoff_base, Duration::from_millis(200));
        assert_eq!(config.backoff_cap, Duration::from_secs(5));
        assert_eq!(config.calls_per_minute, 250);
        assert_eq!(config.mutations_per_entity_per_minute, 30);
        assert_eq!(config.interactive_share_percent, 20);
        assert!(config.user_agent.starts_with("onboarding/"));
    }

    #[test]
    fn debug_hides_the_key_and_the_urls_credentials() {
        let config = StiggConfig::new("http://stigguser:pa55word@localhost:8787", "server-secret");
        let shown = format!("{config:?}");
        for secret in ["server-secret", "pa55word", "stigguser"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("[redacted]"));
        assert!(shown.contains("http://localhost:8787/"), "{shown}");
    }

    /// The schedule's doubling and cap are tested with it, in `onboarding-adapters-http`.
    #[test]
    fn the_retry_schedule_takes_the_settings() {
        let mut config = StiggConfig::new("http://localhost", "k");
        config.max_attempts = 4;
        assert_eq!(
            config.retry_schedule(),
            RetrySchedule {
                max_attempts: 4,
                backoff_base: Duration::from_millis(200),
                backoff_cap: Duration::from_secs(5),
            }
        );
    }
}
