//! Where Stigg is: the settings' Stigg URL and key checked against the environment and the
//! command, down to a remote Stigg or the bundled emulator.

use anyhow::Context;
use onboarding_adapters_stigg::{DEFAULT_BASE_URL, parse_base_url, shown_url};
use secrecy::SecretString;

use super::{AppEnv, Settings, StiggUse};

/// Where Stigg is, once the settings are checked.
#[derive(Debug, Clone)]
pub enum StiggEndpoint {
    /// A real (or test) Stigg at this URL.
    Remote {
        base_url: String,
        api_key: SecretString,
    },
    /// Nothing configured outside production: start the bundled emulator in-process.
    BundledEmulator,
}

impl Settings {
    /// Decides where Stigg is, refusing what production must not run with and what a
    /// one-shot command must not fall back to.
    pub fn stigg_endpoint(&self, use_: StiggUse) -> anyhow::Result<StiggEndpoint> {
        let production = self.app_env == AppEnv::Production;
        if let StiggUse::OneShot { emulator: true, .. } = use_ {
            anyhow::ensure!(
                !production,
                "--emulator: APP_ENV=production refuses the bundled Stigg emulator"
            );
            return Ok(StiggEndpoint::BundledEmulator);
        }
        match (&self.stigg_api_url, &self.stigg_api_key) {
            _ if !self.has_stigg_settings() && production => {
                anyhow::bail!("STIGG_API_KEY is required when APP_ENV=production")
            }
            (None, None) => match use_ {
                StiggUse::Serve => Ok(StiggEndpoint::BundledEmulator),
                StiggUse::OneShot { command, .. } => anyhow::bail!(
                    "STIGG_API_KEY is not set: `{command}` writes to Stigg and never falls back \
                     to the bundled emulator; set STIGG_API_KEY (and STIGG_API_URL), or pass \
                     --emulator to run against the in-memory emulator"
                ),
            },
            (_, None) if production => {
                anyhow::bail!("STIGG_API_KEY is required when APP_ENV=production")
            }
            // Stigg refuses keyless calls, and so does the standalone emulator (it prints the
            // key it accepts): better said now than on the first request.
            (Some(_), None) => anyhow::bail!(
                "STIGG_API_KEY is required when STIGG_API_URL is set (stigg-emulator prints the \
                 key it accepts at start-up)"
            ),
            (url, key) => {
                let base_url = url.as_deref().unwrap_or(DEFAULT_BASE_URL).to_owned();
                let shown = shown_url(&base_url);
                let parsed = parse_base_url(&base_url).with_context(|| {
                    format!("STIGG_API_URL is not a valid http(s) URL: {shown}")
                })?;
                if production && is_loopback(&parsed) {
                    tracing::warn!(
                        base_url = %shown,
                        "STIGG_API_URL points at this machine in production"
                    );
                }
                let api_key = key
                    .clone()
                    .unwrap_or_else(|| SecretString::from(String::new()));
                Ok(StiggEndpoint::Remote {
                    base_url: base_url.trim_end_matches('/').to_owned(),
                    api_key,
                })
            }
        }
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        let url = |raw: &str| parse_base_url(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
        assert_eq!(url("http://127.0.0.1:9/x").port(), Some(9));
        assert!(parse_base_url("ftp://x").is_err());
        assert!(parse_base_url("https://").is_err());
        assert!(parse_base_url("nope").is_err());
        assert!(parse_base_url("https://api.stigg.io/?q=1").is_err());
        for local in [
            "http://127.0.0.1:8787",
            "http://127.1.2.3",
            "http://[::1]:80",
            "http://LocalHost",
        ] {
            assert!(is_loopback(&url(local)), "{local}");
        }
        assert!(!is_loopback(&url("https://api.stigg.io")));
    }
}
