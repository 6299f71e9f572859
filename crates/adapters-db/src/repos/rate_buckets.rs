//! Stigg's budget shared by every instance on PostgreSQL: GCRA buckets in a table, each take
//! one statement timed by the database's clock.
//!
//! A bucket's row holds its theoretical arrival time (TAT). Taking a slot for a call is one
//! upsert: a missing or idle bucket answers "now"; a busy one the first slot its tolerance
//! allows, `max(now, tat - tolerance)`, and moves its TAT to `max(tat, now) + period`. The
//! `DO UPDATE … WHERE` refuses a slot past the caller's wait, and then books nothing. Row
//! locks serialise takers of one bucket across instances; no instance's clock is read, and a
//! killed instance holds nothing (a booked slot is only time, which passes).

use std::time::Duration;

use diesel::sql_types::Double;
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::RunQueryDsl;
use onboarding_domain::ports::RepoError;

use crate::dispatch::with_conn;
use crate::pool::{Database, DbPool};

/// One bucket's key and arithmetic, as the Stigg client's in-process limiter has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedBucket<'a> {
    /// e.g. `op:provision_customer`, `customer:org_1`.
    pub key: &'a str,
    /// One call every `period` in the long run.
    pub period: Duration,
    /// How far ahead of its TAT a call may go: `(burst - 1) * period`.
    pub tolerance: Duration,
}

#[derive(QueryableByName)]
struct Slot {
    #[diesel(sql_type = Double)]
    wait_secs: f64,
}

// `$1` key, `$2` period, `$3` tolerance, `$4` the longest wait, in seconds. `now()` is the
// statement's start in an autocommit statement; UTC whatever the session's time zone.
const TAKE: &str = "\
INSERT INTO stigg_rate_buckets AS b (bucket_key, tat) \
VALUES ($1, (now() AT TIME ZONE 'UTC') + make_interval(secs => $2)) \
ON CONFLICT (bucket_key) DO UPDATE \
SET tat = GREATEST(b.tat, (now() AT TIME ZONE 'UTC')) + make_interval(secs => $2) \
WHERE b.tat - make_interval(secs => $3) <= (now() AT TIME ZONE 'UTC') + make_interval(secs => $4) \
RETURNING EXTRACT(EPOCH FROM GREATEST( \
    b.tat - make_interval(secs => $2) - make_interval(secs => $3), \
    (now() AT TIME ZONE 'UTC')) - (now() AT TIME ZONE 'UTC'))::float8 AS wait_secs";

// Idle buckets: their TAT has passed, so they hold no state.
const FORGET_IDLE: &str = "DELETE FROM stigg_rate_buckets \
WHERE tat < (now() AT TIME ZONE 'UTC') - make_interval(secs => $1)";

impl Database {
    /// Books the next slot `bucket` allows, when it comes within `max_wait`: how long to wait
    /// for it. `None` when it would come later; nothing is booked then.
    ///
    /// # Errors
    /// `RepoError::Unexpected` on SQLite: one process keeps its budget in memory.
    pub async fn take_shared_slot(
        &self,
        bucket: &SharedBucket<'_>,
        max_wait: Duration,
    ) -> Result<Option<Duration>, RepoError> {
        self.postgres_only()?;
        let slot = with_conn!(self.pool, |conn| {
            diesel::sql_query(TAKE)
                .bind::<diesel::sql_types::Text, _>(bucket.key)
                .bind::<Double, _>(bucket.period.as_secs_f64())
                .bind::<Double, _>(bucket.tolerance.as_secs_f64())
                .bind::<Double, _>(max_wait.as_secs_f64())
                .get_result::<Slot>(conn)
                .await
                .optional()
        })?;
        Ok(slot.map(|slot| Duration::from_secs_f64(slot.wait_secs.max(0.0))))
    }

    /// One process on SQLite keeps its budget in memory: the statements are PostgreSQL's.
    fn postgres_only(&self) -> Result<(), RepoError> {
        match &self.pool {
            DbPool::Sqlite(_) => Err(RepoError::Unexpected(
                "the shared Stigg budget needs PostgreSQL".into(),
            )),
            DbPool::Postgres(_) => Ok(()),
        }
    }

    /// Deletes buckets idle for longer than `idle` (entity buckets of customers no longer
    /// active pile up otherwise); how many.
    pub async fn forget_idle_buckets(&self, idle: Duration) -> Result<usize, RepoError> {
        self.postgres_only()?;
        let deleted = with_conn!(self.pool, |conn| {
            diesel::sql_query(FORGET_IDLE)
                .bind::<Double, _>(idle.as_secs_f64())
                .execute(conn)
                .await
        })?;
        Ok(deleted)
    }
}
