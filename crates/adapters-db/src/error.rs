//! The adapter's error, and how driver and pool errors become the domain's `RepoError`.
//!
//! Messages carry the driver's words (e.g. "connection refused") but never SQL text or the
//! database URL.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::pooled_connection::PoolError as ConnectionPoolError;
use onboarding_domain::ports::RepoError;

/// Pool checkout errors, the same type for both backends.
pub(crate) type PoolError = deadpool::managed::PoolError<ConnectionPoolError>;

// Causes are kept as text, not as `#[source]`: `scrub` rewrites that text to take out
// credentials, and the binary prints the whole chain (`{error:#}`), which would repeat a
// cause the message already holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DbError {
    /// `DATABASE_URL` or the pool settings are unusable.
    #[error("invalid database configuration: {0}")]
    Config(String),
    /// The database cannot be reached now (pool timeout, connection refused or lost).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A statement failed.
    #[error("database error: {0}")]
    Query(String),
    /// Applying or reverting the migrations failed.
    #[error("database migration failed: {0}")]
    Migration(String),
}

impl From<DieselError> for DbError {
    fn from(e: DieselError) -> Self {
        match e {
            DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                info,
            ) => Self::Unavailable(info.message().to_owned()),
            DieselError::DatabaseError(DatabaseErrorKind::Unknown, info)
                if is_server_going_away(info.message()) =>
            {
                Self::Unavailable(info.message().to_owned())
            }
            DieselError::NotFound => Self::Query("expected row not found".into()),
            // diesel's Display shows the database's message, never the statement.
            other => Self::Query(other.to_string()),
        }
    }
}

/// The server ended the session or refuses sessions for now (SQLSTATE class 57P, and
/// 53300): a retry later may succeed. diesel does not pass SQLSTATE on, so the server's
/// (English) messages for these codes are matched.
fn is_server_going_away(message: &str) -> bool {
    const MESSAGES: [&str; 5] = [
        // 57P01 admin_shutdown, 57P02 crash_shutdown, 57P05 idle_session_timeout, …
        "terminating connection due to",
        // 57P03 cannot_connect_now
        "the database system is starting up",
        "the database system is shutting down",
        "the database system is in recovery mode",
        // 53300 too_many_connections
        "sorry, too many clients already",
    ];
    MESSAGES.iter().any(|known| message.starts_with(known))
}

impl From<PoolError> for DbError {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Timeout(kind) => Self::Unavailable(format!(
                "no database connection within the acquire timeout ({})",
                match kind {
                    deadpool::managed::TimeoutType::Wait => "waiting for a free connection",
                    deadpool::managed::TimeoutType::Create => "opening a connection",
                    deadpool::managed::TimeoutType::Recycle => "checking a pooled connection",
                }
            )),
            PoolError::Backend(ConnectionPoolError::ConnectionError(e)) => {
                Self::Unavailable(format!("cannot connect: {e}"))
            }
            PoolError::Backend(ConnectionPoolError::QueryError(e)) => {
                Self::Unavailable(format!("connection check failed: {e}"))
            }
            PoolError::Closed => Self::Unavailable("the connection pool is closed".into()),
            PoolError::PostCreateHook(e) => {
                Self::Unavailable(format!("connection set-up failed: {e}"))
            }
            PoolError::NoRuntimeSpecified => {
                Self::Query("the connection pool has no async runtime".into())
            }
        }
    }
}

impl From<DbError> for RepoError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unavailable(m) => Self::Unavailable(m),
            DbError::Query(m) => Self::Unexpected(m),
            other @ (DbError::Config(_) | DbError::Migration(_)) => {
                Self::Unexpected(other.to_string())
            }
        }
    }
}

/// A row the database holds but the domain cannot accept (e.g. an id that does not follow
/// the contract's rule): a data error, reported as unexpected rather than as "not found".
pub(crate) fn bad_row(
    table: &str,
    column: &str,
    value: &str,
    why: impl std::fmt::Display,
) -> RepoError {
    RepoError::Unexpected(format!(
        "{table}.{column} holds {value:?}, which is invalid: {why}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_connections_and_pool_trouble_are_unavailable() {
        let closed = DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection,
            Box::new("connection closed".to_owned()),
        );
        assert!(matches!(
            RepoError::from(DbError::from(closed)),
            RepoError::Unavailable(_)
        ));
        let timeout = PoolError::Timeout(deadpool::managed::TimeoutType::Wait);
        assert!(matches!(
            RepoError::from(DbError::from(timeout)),
            RepoError::Unavailable(_)
        ));
        assert!(matches!(
            RepoError::from(DbError::from(PoolError::Closed)),
            RepoError::Unavailable(_)
        ));
    }

    #[test]
    fn other_errors_are_unexpected() {
        let unique = DieselError::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            Box::new("duplicate key".to_owned()),
        );
        assert_eq!(
            RepoError::from(DbError::from(unique)),
            RepoError::Unexpected("duplicate key".into())
        );
        assert!(matches!(
            RepoError::from(DbError::Migration("x".into())),
            RepoError::Unexpected(m) if m.contains("migration")
        ));
    }
}
