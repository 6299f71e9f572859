//! How to reach Stripe and how hard to try: [`StripeConfig`] and its defaults.

use std::fmt;
use std::time::Duration;

use onboarding_adapters_http::{RetrySchedule, shown_url};
use secrecy::SecretString;

/// Stripe's API.
pub const DEFAULT_API_URL: &str = "https://api.stripe.com";
/// The API version every request names (`Stripe-Version`), so that an upgrade of the
/// account's default version never changes what this client reads: the first version that
/// moved `current_period_end` from the subscription onto its items, which the parsing
/// expects (and the version the bundled emulator speaks by default).
pub const STRIPE_API_VERSION: &str = "2025-03-31.basil";
/// Longest a single attempt may take (connect, send and read the whole answer).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts per call, the first one included.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// First backoff ceiling (Stripe's own libraries start at 0.5 s); it doubles after every
/// failed attempt.
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_millis(500);
/// Highest backoff ceiling.
pub const DEFAULT_BACKOFF_CAP: Duration = Duration::from_secs(5);

/// The `User-Agent` sent unless configured otherwise: the service and this crate's version.
pub fn default_user_agent() -> String {
    format!("onboarding/{}", env!("CARGO_PKG_VERSION"))
}

/// Settings of the Stripe client. Build it with [`StripeConfig::new`] and adjust fields.
///
/// `Debug` never shows the API key.
#[derive(Clone)]
pub struct StripeConfig {
    /// e.g. `https://api.stripe.com`; `/v1/...` is appended. A path prefix is kept.
    pub api_url: String,
    /// A secret or restricted key (`sk_…`, `rk_…`) with read access to subscriptions and
    /// customers. Sent as `Authorization: Bearer …`; never logged, never put in an error.
    pub api_key: SecretString,
    /// Per-attempt timeout; an attempt is also cut at the call's deadline.
    pub timeout: Duration,
    /// Attempts per call (first one included); 0 is treated as 1.
    pub max_attempts: u32,
    /// Full-jitter backoff: after failed attempt `n` the sleep is random in
    /// `[0, min(backoff_cap, backoff_base * 2^(n-1))]`, unless Stripe's `Retry-After` says
    /// how long.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    pub user_agent: String,
}

impl StripeConfig {
    /// Stripe's API with `api_key`: 10 s per attempt, 3 attempts, backoff 500 ms doubling up
    /// to 5 s.
    pub fn new(api_key: impl Into<SecretString>) -> Self {
        Self {
            api_url: DEFAULT_API_URL.to_owned(),
            api_key: api_key.into(),
            timeout: DEFAULT_TIMEOUT,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            backoff_base: DEFAULT_BACKOFF_BASE,
            backoff_cap: DEFAULT_BACKOFF_CAP,
            user_agent: default_user_agent(),
        }
    }

    /// The same, at another URL (an emulator, a proxy).
    pub fn with_api_url(mut self, api_url: impl Into<String>) -> Self {
        self.api_url = api_url.into();
        self
    }

    pub(crate) fn retry_schedule(&self) -> RetrySchedule {
        RetrySchedule {
            max_attempts: self.max_attempts,
            backoff_base: self.backoff_base,
            backoff_cap: self.backoff_cap,
        }
    }
}

impl fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeConfig")
            .field("api_url", &shown_url(&self.api_url))
            .field("api_key", &"[redacted]")
            .field("timeout", &self.timeout)
            .field("max_attempts", &self.max_attempts)
            .field("backoff_base", &self.backoff_base)
            .field("backoff_cap", &self.backoff_cap)
            .field("user_agent", &self.user_agent)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_applies_the_defaults() {
        let config = StripeConfig::new("sk_test_123");
        assert_eq!(config.api_url, "https://api.stripe.com");
        assert_eq!(config.timeout, Duration::from_secs(10));
        assert_eq!(config.max_attempts, 3);
        assert_eq!(config.backoff_base, Duration::from_millis(500));
        assert_eq!(config.backoff_cap, Duration::from_secs(5));
        assert!(config.user_agent.starts_with("onboarding/"));
        let schedule = config.retry_schedule();
        assert_eq!(schedule.ceiling(2), Duration::from_secs(1));
        assert_eq!(schedule.ceiling(9), Duration::from_secs(5));
    }

    #[test]
    fn debug_hides_the_key_and_the_urls_credentials() {
        let config = StripeConfig::new("sk_live_topsecret")
            .with_api_url("http://proxyuser:pa55word@localhost:12111");
        let shown = format!("{config:?}");
        for secret in ["sk_live_topsecret", "topsecret", "pa55word", "proxyuser"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("[redacted]"), "{shown}");
        assert!(shown.contains("http://localhost:12111/"), "{shown}");
    }
}
