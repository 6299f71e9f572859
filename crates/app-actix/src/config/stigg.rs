//! Where Stigg is: the settings' Stigg URL and key checked against the environment and the
//! command, down to a remote Stigg or the bundled emulator.

use std::fmt;
use std::str::FromStr;

use anyhow::Context;
use onboarding_adapters_stigg::{DEFAULT_BASE_URL, parse_base_url, shown_url};
use secrecy::SecretString;

use super::{AppEnv, Settings, StiggUse};

/// `STIGG_INTERACTIVE_SHARE`: the percent of each operation's Stigg quota kept for API
/// requests. Written `20`, `20%` or `0.2`; from 0 up to 90.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InteractiveShare(u8);

impl InteractiveShare {
    /// The most that may be kept: a backlog always keeps a tenth of the quota of its own.
    const MOST: f64 = 90.0;

    pub fn percent(self) -> u8 {
        self.0
    }
}

impl FromStr for InteractiveShare {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let trimmed = raw.trim();
        let (number, percent_sign) = match trimmed.strip_suffix('%') {
            Some(number) => (number.trim_end(), true),
            None => (trimmed, false),
        };
        let value: f64 = number
            .parse()
            .map_err(|_| format!("`{raw}` is not a share: write 20, 20% or 0.2"))?;
        // A fraction written as one (0.2); 1 and above are percents.
        let percent = if !percent_sign && number.contains('.') && value < 1.0 {
            value * 100.0
        } else {
            value
        };
        if !(0.0..=Self::MOST).contains(&percent) {
            return Err(format!(
                "`{raw}` is out of range: from 0 to {} percent",
                Self::MOST
            ));
        }
        // In range, so the cast keeps the value.
        Ok(Self(percent.round() as u8))
    }
}

impl fmt::Display for InteractiveShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

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

#[cfg(test)]
mod share_tests {
    use super::*;

    #[test]
    fn a_share_reads_as_a_percent_with_or_without_its_sign_or_as_a_fraction() {
        for (raw, percent) in [
            ("20", 20),
            ("20%", 20),
            (" 35 % ", 35),
            ("0.2", 20),
            ("0", 0),
        ] {
            assert_eq!(
                raw.parse::<InteractiveShare>().map(|s| s.percent()),
                Ok(percent)
            );
        }
        for raw in ["-1", "91", "95%", "1.5x", ""] {
            assert!(raw.parse::<InteractiveShare>().is_err(), "{raw}");
        }
        assert_eq!(
            "20".parse::<InteractiveShare>().map(|s| s.to_string()),
            Ok("20%".into())
        );
    }
}
