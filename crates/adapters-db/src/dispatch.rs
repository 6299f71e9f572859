//! One query body, both backends.
//!
//! Diesel 2.3 / diesel-async 0.9 have no async `MultiConnection`, so `with_conn!` checks out
//! a connection from whichever pool `DbPool` holds and expands the same body once per
//! concrete connection type: each query is written once and type-checked against both
//! SQLite and PostgreSQL. When an async `#[derive(MultiConnection)]` ships, replacing this
//! macro is a change local to this crate.
//!
//! ```text
//! let row = with_conn!(self.pool, |conn| {
//!     organizations::table.find(id).select(OrgRow::as_select()).first(conn).await.optional()
//! })?;
//! ```
//!
//! * `conn` is bound to `&mut SqliteConn` or `&mut PgConn`.
//! * The body is an expression of type `diesel::QueryResult<T>`; it may `.await` and use
//!   `?` on diesel errors (it runs inside an `async` block).
//! * The macro's value is `Result<T, DbError>`: pool errors (timeout, closed pool, refused
//!   connection) and diesel errors are both converted.
//! * Bring `diesel_async::RunQueryDsl` into scope where the body is written.

macro_rules! with_conn {
    ($pool:expr, |$conn:ident| $body:expr) => {{
        match &$pool {
            $crate::pool::DbPool::Sqlite(pool) => match pool.get().await {
                Ok(mut pooled) => {
                    let $conn: &mut $crate::pool::SqliteConn = &mut pooled;
                    let result: ::diesel::QueryResult<_> = async { $body }.await;
                    result.map_err($crate::error::DbError::from)
                }
                Err(e) => Err($crate::error::DbError::from(e)),
            },
            $crate::pool::DbPool::Postgres(pool) => match pool.get().await {
                Ok(mut pooled) => {
                    let $conn: &mut $crate::pool::PgConn = &mut pooled;
                    let result: ::diesel::QueryResult<_> = async { $body }.await;
                    result.map_err($crate::error::DbError::from)
                }
                Err(e) => Err($crate::error::DbError::from(e)),
            },
        }
    }};
}

pub(crate) use with_conn;
