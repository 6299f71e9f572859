//! `DATABASE_URL` and the pool settings, and which backend a URL selects.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::error::DbError;
use crate::pool::Backend;
use crate::tls::{SslMode, TlsSettings};

/// The contract's default: an SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://onboarding.db";

/// Pool size on PostgreSQL unless configured.
pub const DEFAULT_POSTGRES_CONNECTIONS: usize = 16;
// SQLite has one writer at a time; more connections only add lock waits.
/// Pool size on SQLite unless configured.
pub const DEFAULT_SQLITE_CONNECTIONS: usize = 8;
const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// How to reach the database. `Debug` never shows the URL (it may carry a password).
#[derive(Debug, Clone)]
pub struct DbConfig {
    /// `sqlite://PATH` (relative), `sqlite:///ABS/PATH`, or `postgres://…` / `postgresql://…`.
    pub url: SecretString,
    /// Size of the connection pool.
    pub max_connections: usize,
    /// How long to wait for a connection (checkout, creation, recycling) before giving up
    /// with `Unavailable`.
    pub acquire_timeout: Duration,
}

impl DbConfig {
    /// The URL with the defaults for its backend: 16 connections for PostgreSQL, 8 for
    /// SQLite, 5 s to acquire one.
    pub fn new(url: impl Into<SecretString>) -> Self {
        let url = url.into();
        let max_connections = match Target::parse(url.expose_secret()) {
            Ok(Target::Postgres(_)) => DEFAULT_POSTGRES_CONNECTIONS,
            _ => DEFAULT_SQLITE_CONNECTIONS,
        };
        Self {
            url,
            max_connections,
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
        }
    }
}

impl Default for DbConfig {
    fn default() -> Self {
        Self::new(DEFAULT_DATABASE_URL)
    }
}

/// What a URL points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// The SQLite file, as a plain path (diesel would read `file:` URIs differently).
    Sqlite(PathBuf),
    /// The PostgreSQL URL and its TLS settings.
    Postgres(PgUrl),
}

/// A PostgreSQL URL split in two: libpq's `sslmode` and `sslrootcert`, which tokio-postgres
/// does not know (it has no `verify-ca`, `verify-full` nor root file), and the rest, which
/// tokio-postgres parses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PgUrl {
    /// The URL without `sslmode` and `sslrootcert`.
    pub(crate) url: String,
    pub(crate) tls: TlsSettings,
}

impl PgUrl {
    fn parse(url: &str) -> Result<Self, DbError> {
        let Some((base, query)) = url.split_once('?') else {
            return Ok(Self {
                url: url.to_owned(),
                tls: TlsSettings::default(),
            });
        };
        let mut tls = TlsSettings::default();
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            // Only these two are decoded; every other parameter is passed on as written.
            let (key, value) = url::form_urlencoded::parse(pair.as_bytes())
                .next()
                .unwrap_or_default();
            match key.as_ref() {
                // As in libpq, the last occurrence wins.
                "sslmode" => tls.mode = SslMode::parse(&value)?,
                "sslrootcert" => {
                    tls.root_cert = (!value.is_empty()).then(|| PathBuf::from(value.as_ref()))
                }
                _ => kept.push(pair),
            }
        }
        let url = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        Ok(Self { url, tls })
    }
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Self, DbError> {
        let url = url.trim();
        let (scheme, rest) = url.split_once(':').ok_or_else(|| {
            DbError::Config(
                "DATABASE_URL must start with sqlite:// or postgres:// (no scheme found)".into(),
            )
        })?;
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => Self::parse_sqlite(rest),
            "postgres" | "postgresql" => {
                if rest.starts_with("//") {
                    PgUrl::parse(url).map(Self::Postgres)
                } else {
                    Err(DbError::Config(
                        "a PostgreSQL DATABASE_URL must look like postgres://USER@HOST/DB".into(),
                    ))
                }
            }
            other => {
                // Only echo the scheme when it clearly is one: in a URL without a scheme,
                // what precedes the first ':' may be a user name and what follows a password.
                let shown = if rest.starts_with("//")
                    && !other.is_empty()
                    && other.len() <= 20
                    && other
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
                {
                    format!("'{other}'")
                } else {
                    "in it".to_owned()
                };
                Err(DbError::Config(format!(
                    "unsupported database scheme {shown}: use sqlite://PATH or postgres://…"
                )))
            }
        }
    }

    fn parse_sqlite(rest: &str) -> Result<Self, DbError> {
        // `sqlite://x.db` is relative, `sqlite:///abs/x.db` absolute; `sqlite:x.db` is
        // accepted too.
        let path = rest.strip_prefix("//").unwrap_or(rest);
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        if path.is_empty() || path == ":memory:" || rest.contains("mode=memory") {
            let why = if path.is_empty() {
                "an SQLite DATABASE_URL needs a file path, e.g. sqlite://onboarding.db"
            } else {
                "in-memory SQLite (sqlite::memory:) cannot back a connection pool: each \
                 connection would get its own empty database; use a file, e.g. \
                 sqlite://onboarding.db"
            };
            return Err(DbError::Config(why.into()));
        }
        Ok(Self::Sqlite(PathBuf::from(path)))
    }

    pub(crate) fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    /// Where the URL points, fit for a log line: the SQLite path, or the PostgreSQL host,
    /// port and database without user, password or query.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("sqlite:{}", path.display()),
            Self::Postgres(PgUrl { url, .. }) => match url::Url::parse(url) {
                Ok(parsed) => {
                    let host = parsed.host_str().unwrap_or_default();
                    let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
                    format!("postgres://{host}{port}{}", parsed.path())
                }
                // Never the raw text: it may hold a password.
                Err(_) => "postgres://(unparsable URL)".to_owned(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<Target, DbError> {
        Target::parse(url)
    }

    #[test]
    fn sqlite_urls_become_paths() {
        assert_eq!(
            parse("sqlite://onboarding.db").ok(),
            Some(Target::Sqlite("onboarding.db".into()))
        );
        assert_eq!(
            parse("sqlite:///var/lib/x.db").ok(),
            Some(Target::Sqlite("/var/lib/x.db".into()))
        );
        assert_eq!(
            parse("sqlite:data/x.db").ok(),
            Some(Target::Sqlite("data/x.db".into()))
        );
        assert_eq!(
            parse("SQLITE://x.db?mode=rwc").ok(),
            Some(Target::Sqlite("x.db".into()))
        );
    }

    #[test]
    fn in_memory_and_empty_sqlite_are_refused() {
        for url in [
            "sqlite::memory:",
            "sqlite://:memory:",
            "sqlite://",
            "sqlite://x.db?mode=memory",
        ] {
            let err = parse(url).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(
                err.contains("DATABASE_URL") || err.contains("memory"),
                "{url}: {err}"
            );
        }
        let err = parse("sqlite::memory:").err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("cannot back a connection pool")));
    }

    #[test]
    fn postgres_urls_are_kept_and_described_without_credentials() {
        let url = "postgresql://alice:hunter2@db.example:5433/onboarding?sslmode=disable";
        let target = parse(url).expect("the URL parses");
        assert_eq!(target.backend(), Backend::Postgres);
        assert_eq!(target.describe(), "postgres://db.example:5433/onboarding");
        assert!(parse("postgres:foo").is_err());
    }

    fn pg(url: &str) -> PgUrl {
        match parse(url) {
            Ok(Target::Postgres(pg)) => pg,
            other => panic!("{url}: {other:?}"),
        }
    }

    #[test]
    fn tls_parameters_are_taken_out_and_the_rest_passed_on() {
        let plain = pg("postgres://u:pw@h:5432/db");
        assert_eq!(plain.url, "postgres://u:pw@h:5432/db");
        assert_eq!(plain.tls, TlsSettings::default());
        assert_eq!(plain.tls.mode, SslMode::Prefer);

        let full = pg("postgres://u@h/db?sslmode=verify-full&sslrootcert=/etc/ssl/ca.pem");
        assert_eq!(full.url, "postgres://u@h/db");
        assert_eq!(full.tls.mode, SslMode::VerifyFull);
        assert_eq!(full.tls.root_cert, Some(PathBuf::from("/etc/ssl/ca.pem")));

        let mixed = pg(
            "postgresql://u@h/db?application_name=a%20b&sslrootcert=%2Fca%20dir%2Fca.pem\
             &connect_timeout=5&sslmode=verify-ca",
        );
        assert_eq!(
            mixed.url,
            "postgresql://u@h/db?application_name=a%20b&connect_timeout=5"
        );
        assert_eq!(mixed.tls.mode, SslMode::VerifyCa);
        assert_eq!(mixed.tls.root_cert, Some(PathBuf::from("/ca dir/ca.pem")));

        assert_eq!(
            pg("postgres://h/db?sslmode=disable").tls.mode,
            SslMode::Disable
        );
        assert_eq!(
            pg("postgres://h/db?sslmode=require").tls.mode,
            SslMode::Require
        );
    }

    #[test]
    fn an_unknown_sslmode_is_refused_by_name_without_the_password() {
        for url in [
            "postgres://u:hunter2@h/db?sslmode=verify_full",
            "postgres://u:hunter2@h/db?sslmode=hunter2",
            "postgres://u:hunter2@h/db?x=1&sslmode=",
        ] {
            match parse(url) {
                Err(DbError::Config(m)) => {
                    assert!(m.contains("sslmode"), "{m}");
                    assert!(!m.contains("hunter2"), "{m}");
                }
                other => panic!("{url}: expected a configuration error, got {other:?}"),
            }
        }
        assert!(parse("postgres://h/db?sslmode=nope").is_err());
    }

    #[test]
    fn other_schemes_are_refused_without_echoing_the_url() {
        let err = parse("mysql://root:hunter2@localhost/db")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("'mysql'"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err = parse("root:hunter2@localhost/db")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(!err.contains("hunter2") && !err.contains("root"), "{err}");
        assert!(parse("no-scheme-at-all").is_err());
    }

    #[test]
    fn defaults_follow_the_backend() {
        assert_eq!(DbConfig::default().max_connections, 8);
        assert_eq!(DbConfig::new("postgres://h/db").max_connections, 16);
        assert_eq!(
            DbConfig::new("postgres://h/db").acquire_timeout,
            Duration::from_secs(5)
        );
        let shown = format!("{:?}", DbConfig::new("postgres://u:hunter2@h/db"));
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
