//! What an emulator starts with: the accepted key, the API version it speaks, where webhooks
//! go and how stubbornly a failed delivery is retried.

use std::fmt;
use std::time::Duration;

use onboarding_adapters_stripe::WebhookSecrets;

/// The secret key the emulator accepts unless told otherwise. Test-mode shaped, so that code
/// refusing live keys outside production accepts it.
pub const DEFAULT_API_KEY: &str = "sk_test_emulator";

/// The API version answers and events are rendered in when a request names none: the first
/// version that moved the billing period from the subscription onto its items.
pub const DEFAULT_API_VERSION: &str = "2025-03-31.basil";

/// Versions from this date on carry `current_period_*` on subscription items only; older ones
/// also show them on the subscription.
pub(crate) const ITEM_PERIODS_SINCE: &str = "2025-03-31";

/// Start-up settings of an [`Emulator`](crate::Emulator).
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// The only `Authorization: Bearer` key accepted; anything else is answered 401.
    pub api_key: String,
    /// The account's default API version: events use it, and so do answers to requests without
    /// a `Stripe-Version` header.
    pub api_version: String,
    /// Where events are delivered; `None` records events without delivering them. Replaceable
    /// at run time ([`Emulator::set_webhook`](crate::Emulator::set_webhook)).
    pub webhook: Option<WebhookEndpoint>,
    pub retry: RetryPolicy,
    /// How long one delivery attempt may take before it counts as failed.
    pub delivery_timeout: Duration,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            api_key: DEFAULT_API_KEY.to_owned(),
            api_version: DEFAULT_API_VERSION.to_owned(),
            webhook: None,
            retry: RetryPolicy::default(),
            delivery_timeout: Duration::from_secs(10),
        }
    }
}

/// A webhook endpoint: its URL and the signing secrets (one `v1` signature per secret, as
/// Stripe sends during a rotation).
#[derive(Clone)]
pub struct WebhookEndpoint {
    pub url: String,
    pub secrets: WebhookSecrets,
}

impl WebhookEndpoint {
    /// `secrets` is a comma-separated `whsec_…` list. Refuses a URL that is not http(s) and an
    /// empty secret list.
    pub fn new(url: &str, secrets: &str) -> Result<Self, String> {
        let parsed = reqwest::Url::parse(url).map_err(|error| format!("url {url:?}: {error}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("url {url:?} is not http or https"));
        }
        let secrets = WebhookSecrets::parse(secrets)
            .ok_or_else(|| "at least one webhook signing secret is needed".to_owned())?;
        Ok(Self {
            url: url.to_owned(),
            secrets,
        })
    }
}

impl fmt::Debug for WebhookEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The secrets' own Debug already redacts them; the URL is what a reader needs.
        f.debug_struct("WebhookEndpoint")
            .field("url", &self.url)
            .field("secrets", &self.secrets)
            .finish()
    }
}

/// When a failed delivery (non-2xx or no answer) is tried again: after `base_delay`, then twice
/// as long each time up to `max_delay`, until `max_attempts` attempts were made or the next one
/// would fall more than `horizon` after the event was created.
///
/// Stripe retries live-mode deliveries with exponential backoff for up to three days
/// ([`RetryPolicy::live`]); the default gives up after a few quick attempts, which suits a
/// development loop, and tests shrink `base_delay` to milliseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Attempts in all, the first one included; 1 means no retry.
    pub max_attempts: u32,
    pub horizon: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            max_attempts: 4,
            horizon: Duration::from_secs(3600),
        }
    }
}

impl RetryPolicy {
    /// Stripe's live-mode horizon: attempts for three days, hourly at the slowest.
    pub fn live() -> Self {
        Self {
            base_delay: Duration::from_secs(60),
            max_delay: Duration::from_secs(3600),
            max_attempts: u32::MAX,
            horizon: Duration::from_secs(3 * 24 * 3600),
        }
    }

    /// The wait before attempt `attempt + 1`, after attempt `attempt` (1-based) failed, or
    /// `None` when there is no next attempt. `age` is how old the event is now.
    pub fn delay_after(&self, attempt: u32, age: Duration) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let doublings = attempt.saturating_sub(1).min(31);
        let delay = self
            .base_delay
            .saturating_mul(1 << doublings)
            .min(self.max_delay);
        (age.saturating_add(delay) <= self.horizon).then_some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_stop_at_the_attempt_limit() {
        let policy = RetryPolicy {
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(5),
            max_attempts: 5,
            horizon: Duration::from_secs(3600),
        };
        let delays: Vec<_> = (1..=5)
            .map(|attempt| policy.delay_after(attempt, Duration::ZERO))
            .collect();
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(delays, [secs(1), secs(2), secs(4), secs(5), None]);
    }

    #[test]
    fn no_attempt_is_scheduled_past_the_horizon() {
        let policy = RetryPolicy {
            horizon: Duration::from_secs(10),
            ..RetryPolicy::default()
        };
        assert_eq!(
            policy.delay_after(1, Duration::from_secs(9)),
            Some(Duration::from_secs(1))
        );
        assert_eq!(policy.delay_after(1, Duration::from_secs(10)), None);
        assert!(
            RetryPolicy::live()
                .delay_after(1000, Duration::from_secs(3600))
                .is_some()
        );
    }

    #[test]
    fn an_endpoint_needs_an_http_url_and_a_secret() {
        assert!(WebhookEndpoint::new("http://127.0.0.1:1/hook", "whsec_a").is_ok());
        assert!(WebhookEndpoint::new("ftp://host/hook", "whsec_a").is_err());
        assert!(WebhookEndpoint::new("not a url", "whsec_a").is_err());
        assert!(WebhookEndpoint::new("http://host/hook", " , ").is_err());
        let shown = format!("{:?}", WebhookEndpoint::new("http://h/x", "whsec_secret"));
        assert!(!shown.contains("whsec_secret"), "{shown}");
    }
}
