//! Stigg's budget shared by every instance on PostgreSQL: GCRA buckets in a table, each take
//! one statement timed by the database's clock.
//!
//! A bucket's row holds its theoretical arrival time (TAT). A take offers one or more choices
//! (ways to pay for one call, each drawing from one or more buckets); the function
//! `stigg_take_slot` (migration `2026-12-05-000002_stigg_budget_take`) locks the buckets in key
//! order, books the earliest slot a choice allows within its wait, and books nothing when
//! none fits. Row locks serialise takers of one bucket across instances; no instance's clock
//! is read, and a killed instance holds nothing (a booked slot is only time, which passes).

use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::{Array, Double, Integer, Nullable, Text, Timestamp};
use diesel_async::RunQueryDsl;
use onboarding_domain::ports::RepoError;

use crate::error::DbError;
use crate::pool::{Database, DbPool};

/// One bucket a choice draws from, with the arithmetic of the caller's limiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketDraw {
    /// e.g. `op:provision_customer`, `customer:org_1`.
    pub key: String,
    /// One call every `period` in the long run.
    pub period: Duration,
    /// How far ahead of its TAT a call may go: `(burst - 1) * period`.
    pub tolerance: Duration,
}

/// One way to pay for a call: a slot every bucket of `draws` allows, within `max_wait`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetChoice {
    pub draws: Vec<BucketDraw>,
    pub max_wait: Duration,
}

/// What a take booked.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetTake {
    /// The choice booked (index into the choices offered); `None`: none fitted its wait, and
    /// nothing was booked.
    pub chosen: Option<usize>,
    /// How long until the booked slot; when refused, until the earliest slot of a choice
    /// that may wait.
    pub wait: Duration,
    /// How far each bucket drawn from is booked ahead of now, after the take, by key.
    pub ahead: Vec<(String, Duration)>,
}

#[derive(QueryableByName)]
struct TakeRow {
    #[diesel(sql_type = Nullable<Integer>)]
    chosen: Option<i32>,
    #[diesel(sql_type = Double)]
    wait_secs: f64,
    #[diesel(sql_type = Array<Text>)]
    bucket_keys: Vec<String>,
    #[diesel(sql_type = Array<Double>)]
    ahead_secs: Vec<f64>,
}

const TAKE: &str = "SELECT * FROM stigg_take_slot($1, $2, $3, $4, $5, $6)";

// Idle buckets: their TAT has passed, so they hold no state. Rows a take holds are skipped
// (it is using them), so the sweep never deletes a row under a take nor waits on one.
const FORGET_IDLE: &str = "DELETE FROM stigg_rate_buckets WHERE bucket_key IN ( \
SELECT bucket_key FROM stigg_rate_buckets \
WHERE tat < (now() AT TIME ZONE 'UTC') - make_interval(secs => $1) \
FOR UPDATE SKIP LOCKED)";

impl Database {
    /// Books the earliest slot one of `choices` allows within its wait, by the database's
    /// clock: one statement.
    ///
    /// # Errors
    /// `RepoError::Unexpected` on SQLite (one process keeps its budget in memory), and when
    /// the database fails.
    pub async fn take_stigg_budget(
        &self,
        choices: &[BudgetChoice],
    ) -> Result<BudgetTake, RepoError> {
        self.take_stigg_budget_at(choices, None).await
    }

    /// [`Database::take_stigg_budget`] at a given database time instead of the database's
    /// clock: for tests of the arithmetic on a fake clock.
    #[doc(hidden)]
    pub async fn take_stigg_budget_at(
        &self,
        choices: &[BudgetChoice],
        at: Option<chrono::NaiveDateTime>,
    ) -> Result<BudgetTake, RepoError> {
        let DbPool::Postgres(pool) = &self.pool else {
            return Err(postgres_only());
        };
        let mut draw_choice = Vec::new();
        let mut draw_key = Vec::new();
        let mut draw_period = Vec::new();
        let mut draw_tolerance = Vec::new();
        for (index, choice) in choices.iter().enumerate() {
            for draw in &choice.draws {
                // 1-based, as SQL arrays are.
                draw_choice.push(i32::try_from(index + 1).unwrap_or(i32::MAX));
                draw_key.push(draw.key.as_str());
                draw_period.push(draw.period.as_secs_f64());
                draw_tolerance.push(draw.tolerance.as_secs_f64());
            }
        }
        let max_wait: Vec<f64> = choices.iter().map(|c| c.max_wait.as_secs_f64()).collect();
        let mut conn = pool.get().await.map_err(DbError::from)?;
        let row = diesel::sql_query(TAKE)
            .bind::<Array<Integer>, _>(draw_choice)
            .bind::<Array<Text>, _>(draw_key)
            .bind::<Array<Double>, _>(draw_period)
            .bind::<Array<Double>, _>(draw_tolerance)
            .bind::<Array<Double>, _>(max_wait)
            .bind::<Nullable<Timestamp>, _>(at)
            .get_result::<TakeRow>(&mut conn)
            .await
            .map_err(DbError::from)?;
        let positive = |secs: f64| Duration::from_secs_f64(secs.max(0.0));
        Ok(BudgetTake {
            chosen: row
                .chosen
                .and_then(|c| usize::try_from(c).ok())
                .and_then(|c| c.checked_sub(1)),
            wait: positive(row.wait_secs),
            ahead: row
                .bucket_keys
                .into_iter()
                .zip(row.ahead_secs.into_iter().map(positive))
                .collect(),
        })
    }

    /// Deletes buckets idle for longer than `idle` (entity buckets of customers no longer
    /// active pile up otherwise); how many.
    pub async fn forget_idle_buckets(&self, idle: Duration) -> Result<usize, RepoError> {
        let DbPool::Postgres(pool) = &self.pool else {
            return Err(postgres_only());
        };
        let mut conn = pool.get().await.map_err(DbError::from)?;
        let deleted = diesel::sql_query(FORGET_IDLE)
            .bind::<Double, _>(idle.as_secs_f64())
            .execute(&mut conn)
            .await
            .map_err(DbError::from)?;
        Ok(deleted)
    }
}

/// One process on SQLite keeps its budget in memory: the statements are PostgreSQL's.
fn postgres_only() -> RepoError {
    RepoError::Unexpected("the shared Stigg budget needs PostgreSQL".into())
}
