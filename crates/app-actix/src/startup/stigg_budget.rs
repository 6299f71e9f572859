//! The Stigg client's shared budget kept in the database: the adapter's store port
//! ([`SharedBudget`]) over `Database::take_stigg_budget`, so the two adapters stay apart; and
//! the sweep of idle buckets in the background of `serve`.

use std::time::Duration;

use async_trait::async_trait;
use onboarding_adapters_db::{Backend, BucketDraw, BudgetChoice, Database};
use onboarding_adapters_stigg::{BudgetError, Choice, SharedBudget, Take};
use onboarding_domain::use_cases::StopSignal;
use tracing::{debug, warn};

use super::BackgroundTasks;

/// How often idle buckets are deleted, and how long a bucket stays idle first. An idle
/// bucket holds no state (its slots are all in the past), so the delay only bounds the table:
/// the entity buckets of customers mutated in the last ten minutes or so.
const SWEEP_EVERY: Duration = Duration::from_secs(10 * 60);

pub struct DatabaseBudget {
    db: Database,
}

impl DatabaseBudget {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

#[async_trait]
impl SharedBudget for DatabaseBudget {
    async fn take(&self, choices: &[Choice]) -> Result<Take, BudgetError> {
        let choices: Vec<BudgetChoice> = choices
            .iter()
            .map(|choice| BudgetChoice {
                draws: choice
                    .draws
                    .iter()
                    .map(|draw| BucketDraw {
                        key: draw.key.clone(),
                        period: draw.period,
                        tolerance: draw.tolerance,
                    })
                    .collect(),
                max_wait: choice.max_wait,
            })
            .collect();
        let took = self
            .db
            .take_stigg_budget(&choices)
            .await
            .map_err(|error| BudgetError(error.to_string()))?;
        Ok(Take {
            chosen: took.chosen,
            wait: took.wait,
            ahead: took.ahead,
        })
    }
}

/// On PostgreSQL, deletes idle buckets at start-up and then every [`SWEEP_EVERY`]. Every
/// instance sweeps; a sweep that finds nothing costs one indexed statement.
pub fn sweep_idle_buckets(background: &mut BackgroundTasks, db: Database) {
    if db.backend() != Backend::Postgres {
        return;
    }
    background.spawn("Stigg budget sweep", move |stop| async move {
        while !stop.is_stopped() {
            match db.forget_idle_buckets(SWEEP_EVERY).await {
                Ok(deleted) => debug!(deleted, "idle Stigg budget buckets deleted"),
                Err(error) => warn!(%error, "cannot delete idle Stigg budget buckets"),
            }
            tokio::select! {
                () = tokio::time::sleep(SWEEP_EVERY) => {}
                () = stop.stopped() => {}
            }
        }
    });
}
