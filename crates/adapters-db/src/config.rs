//! `DATABASE_URL` and the pool settings, and which backend a URL selects.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::error::DbError;
use crate::pool::Backend;

/// The contract's default: an SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://onboarding.db";

const DEFAULT_POSTGRES_CONNECTIONS: usize = 16;
// SQLite has one writer at a time; more connections only add lock waits.
const DEFAULT_SQLITE_CONNECTIONS: usize = 8;
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

    /// The backend the URL selects, or why the URL is refused. The message never repeats
    /// the URL.
    pub fn backend(&self) -> Result<Backend, DbError> {
        Target::parse(self.url.expose_secret()).map(|t| t.backend())
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
    /// The PostgreSQL URL, as given (tokio-postgres parses it).
    Postgres(String),
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
                    Ok(Self::Postgres(url.to_owned()))
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
            Self::Postgres(url) => {
                let after_scheme = url.split_once("://").map_or("", |(_, r)| r);
                let without_query = after_scheme.split(['?', '#']).next().unwrap_or("");
                let (authority, db) = without_query.split_once('/').unwrap_or((without_query, ""));
                let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
                format!("postgres://{host}/{db}")
            }
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
        let target = parse(url).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(target.backend(), Backend::Postgres);
        assert_eq!(target.describe(), "postgres://db.example:5433/onboarding");
        assert!(parse("postgres:foo").is_err());
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
