//! Building a client: the hooks it waits and jitters through (replaced in tests), and the
//! pooled `reqwest::Client` it sends everything through.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};

use crate::{FullJitter, Jitter, Sleeper, TokioSleeper};

/// How a client waits (backoff, and any wait of its own such as a rate limit) and where its
/// backoff randomness comes from. The default is the real pair: Tokio's timer and full jitter.
#[derive(Clone)]
pub struct RetryHooks {
    pub sleeper: Arc<dyn Sleeper>,
    pub jitter: Arc<dyn Jitter>,
}

impl Default for RetryHooks {
    fn default() -> Self {
        Self {
            sleeper: Arc::new(TokioSleeper),
            jitter: Arc::new(FullJitter),
        }
    }
}

impl fmt::Debug for RetryHooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryHooks").finish_non_exhaustive()
    }
}

/// Why the HTTP client could not be built. The message never contains a header's value.
#[derive(Debug)]
pub enum ClientBuildError {
    /// A setting that cannot work, in words for the operator.
    Config(String),
    Http(reqwest::Error),
}

impl fmt::Display for ClientBuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(message) => f.write_str(message),
            Self::Http(error) => write!(f, "cannot build the HTTP client: {error}"),
        }
    }
}

impl std::error::Error for ClientBuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Config(_) => None,
            Self::Http(error) => Some(error),
        }
    }
}

/// `value` as a header value kept out of reqwest's and hyper's `Debug` output (for an API key),
/// or `None` when it has characters a header cannot carry.
pub fn secret_header(value: &str) -> Option<HeaderValue> {
    let mut header = HeaderValue::from_str(value).ok()?;
    header.set_sensitive(true);
    Some(header)
}

/// The pooled client an adapter sends every call through: `headers` on every request, the
/// `user_agent`, idle connections kept 60 s, TCP keepalive every 30 s. It follows no redirect:
/// neither API redirects, and a redirect would carry the key to another host (reqwest strips
/// only the standard credential headers) and turn a POST into a GET.
pub fn pooled_client(
    headers: HeaderMap,
    user_agent: &str,
) -> Result<reqwest::Client, ClientBuildError> {
    let user_agent = HeaderValue::from_str(user_agent).map_err(|_| {
        ClientBuildError::Config(
            "the user agent has characters not allowed in an HTTP header".into(),
        )
    })?;
    reqwest::Client::builder()
        .default_headers(headers)
        .user_agent(user_agent)
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(60))
        .tcp_keepalive(Duration::from_secs(30))
        .build()
        .map_err(ClientBuildError::Http)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_headers_are_sensitive() {
        assert!(secret_header("sk_test_x").is_some_and(|h| h.is_sensitive()));
        assert!(secret_header("a\nb").is_none());
    }

    #[test]
    fn a_bad_user_agent_is_a_configuration_error() {
        let refused = pooled_client(HeaderMap::new(), "bad\nagent").err();
        assert!(matches!(refused, Some(ClientBuildError::Config(_))));
        assert!(pooled_client(HeaderMap::new(), "onboarding/1").is_ok());
    }
}
