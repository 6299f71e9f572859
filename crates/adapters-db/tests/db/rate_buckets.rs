//! The shared Stigg budget: GCRA buckets in PostgreSQL, timed by the database's clock.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use onboarding_adapters_db::test_support::TestDatabase;
use onboarding_adapters_db::{
    Backend, BucketDraw, BudgetChoice, BudgetTake, Database, DbConfig, connect,
};
use secrecy::SecretString;

use crate::support::{TestResult, on_both_backends};

on_both_backends!(
    a_bucket_spaces_slots_by_its_period_and_refuses_past_the_wait,
    the_earliest_choice_within_its_wait_is_booked_and_only_its_buckets,
    idle_buckets_are_forgotten_and_busy_ones_kept,
    three_pools_drawing_together_never_exceed_the_bucket_in_any_window,
    takes_of_overlapping_buckets_and_the_sweep_never_deadlock,
);

fn draw(key: &str, period_ms: u64, tolerance_ms: u64) -> BucketDraw {
    BucketDraw {
        key: key.to_owned(),
        period: Duration::from_millis(period_ms),
        tolerance: Duration::from_millis(tolerance_ms),
    }
}

fn choice(draws: &[&BucketDraw], max_wait_ms: u64) -> BudgetChoice {
    BudgetChoice {
        draws: draws.iter().map(|d| (*d).clone()).collect(),
        max_wait: Duration::from_millis(max_wait_ms),
    }
}

/// A fake database clock: `ms` milliseconds after a fixed start.
fn at(ms: i64) -> Option<NaiveDateTime> {
    let start = chrono::DateTime::from_timestamp(1_800_000_000, 0).map(|t| t.naive_utc());
    start.map(|t| t + chrono::Duration::milliseconds(ms))
}

async fn take(
    db: &Database,
    choices: &[BudgetChoice],
    ms: i64,
) -> Result<BudgetTake, onboarding_domain::ports::RepoError> {
    db.take_stigg_budget_at(choices, at(ms)).await
}

fn ms(wait: Duration) -> u128 {
    wait.as_millis()
}

async fn a_bucket_spaces_slots_by_its_period_and_refuses_past_the_wait(
    db: TestDatabase,
) -> TestResult {
    let op = draw("op:test", 100, 0);
    let within_1s = [choice(&[&op], 1000)];
    if db.backend() == Backend::Sqlite {
        // One process: the Stigg client keeps its budget in memory.
        assert!(db.take_stigg_budget(&within_1s).await.is_err());
        assert!(db.forget_idle_buckets(Duration::ZERO).await.is_err());
        return Ok(());
    }
    let first = take(&db, &within_1s, 0).await?;
    assert_eq!((first.chosen, ms(first.wait)), (Some(0), 0));
    assert_eq!(
        first.ahead,
        vec![("op:test".to_owned(), Duration::from_millis(100))]
    );
    assert_eq!(ms(take(&db, &within_1s, 0).await?.wait), 100);
    assert_eq!(ms(take(&db, &within_1s, 50).await?.wait), 150);
    // Past the caller's wait: refused with the wait it would have had, and nothing booked.
    let refused = take(&db, &[choice(&[&op], 100)], 50).await?;
    assert_eq!((refused.chosen, ms(refused.wait)), (None, 250));
    assert_eq!(ms(take(&db, &within_1s, 50).await?.wait), 250);
    // Long after, the bucket is as good as new; a tolerance lets calls go before their TAT.
    let banked = draw("op:test", 100, 200);
    let three_at_once = [choice(&[&banked], 0)];
    for _ in 0..3 {
        assert_eq!(take(&db, &three_at_once, 10_000).await?.chosen, Some(0));
    }
    assert_eq!(take(&db, &three_at_once, 10_000).await?.chosen, None);
    // Another key is another bucket.
    let other = draw("customer:org_1", 100, 0);
    assert_eq!(
        take(&db, &[choice(&[&other], 0)], 10_000).await?.chosen,
        Some(0)
    );
    Ok(())
}

async fn the_earliest_choice_within_its_wait_is_booked_and_only_its_buckets(
    db: TestDatabase,
) -> TestResult {
    if db.backend() == Backend::Sqlite {
        return Ok(());
    }
    let main = draw("op:p", 100, 0);
    let reserve = draw("op:p:api", 400, 0);
    let entity = draw("customer:org_1", 1000, 0);
    let reserve_then_main = [
        choice(&[&reserve, &entity], 5000),
        choice(&[&main, &entity], 5000),
    ];
    // A tie goes to the first choice: the reserve; the main bucket is untouched.
    let first = take(&db, &reserve_then_main, 0).await?;
    assert_eq!((first.chosen, ms(first.wait)), (Some(0), 0));
    let keys: Vec<_> = first
        .ahead
        .iter()
        .map(|(k, d)| (k.as_str(), ms(*d)))
        .collect();
    assert_eq!(
        keys,
        vec![("customer:org_1", 1000), ("op:p", 0), ("op:p:api", 400)]
    );

    // The entity holds both choices to 1 s: the first wins again.
    let second = take(&db, &reserve_then_main, 0).await?;
    assert_eq!((second.chosen, ms(second.wait)), (Some(0), 1000));

    // Without the entity, the main bucket's slot (now) comes before the reserve's (1.4 s).
    let plain = [choice(&[&reserve], 5000), choice(&[&main], 5000)];
    let third = take(&db, &plain, 0).await?;
    assert_eq!((third.chosen, ms(third.wait)), (Some(1), 0));

    // A choice that must go at once is taken when it can and skipped when it cannot. The
    // main bucket booked 2 s ahead; the reserve free at 1.4 s.
    for _ in 0..20 {
        take(&db, &[choice(&[&main], 5000)], 1400).await?;
    }
    let borrow_now = [choice(&[&main], 5000), choice(&[&reserve], 0)];
    let fourth = take(&db, &borrow_now, 1400).await?;
    assert_eq!((fourth.chosen, ms(fourth.wait)), (Some(1), 0));
    let fifth = take(&db, &borrow_now, 1400).await?;
    assert_eq!((fifth.chosen, ms(fifth.wait)), (Some(0), 2000));
    Ok(())
}

async fn idle_buckets_are_forgotten_and_busy_ones_kept(db: TestDatabase) -> TestResult {
    if db.backend() == Backend::Sqlite {
        return Ok(());
    }
    let idle = draw("customer:idle", 1, 0);
    let busy = draw("customer:busy", 60_000, 0);
    db.take_stigg_budget(&[choice(&[&idle], 0)]).await?;
    db.take_stigg_budget(&[choice(&[&busy], 0)]).await?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(db.forget_idle_buckets(Duration::from_millis(10)).await?, 1);
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM stigg_rate_buckets")
            .await?,
        1
    );
    Ok(())
}

/// Callers on three pools take overlapping sets of buckets, offered in differing orders,
/// while a sweep deletes idle rows as fast as it can: every take is answered (rows are locked
/// in key order, and the sweep skips rows a take holds), none books a bucket it did not win.
async fn takes_of_overlapping_buckets_and_the_sweep_never_deadlock(db: TestDatabase) -> TestResult {
    if db.backend() == Backend::Sqlite {
        return Ok(());
    }
    // A period of 0: a bucket is idle again right after each take, so the sweep keeps
    // deleting the very rows the takers lock.
    let (a, b, c) = (
        draw("op:a", 0, 0),
        draw("op:b", 0, 0),
        draw("customer:c", 0, 0),
    );
    // And rows only the sweep touches, so it always has something to delete.
    for i in 0..20 {
        let idle = draw(&format!("customer:idle{i}"), 0, 0);
        db.take_stigg_budget(&[choice(&[&idle], 0)]).await?;
    }
    let orders = [
        vec![choice(&[&a, &c], 1000), choice(&[&b, &c], 1000)],
        vec![choice(&[&c, &b], 1000), choice(&[&c, &a], 1000)],
        vec![choice(&[&b, &a], 1000)],
    ];
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, choices) in orders.into_iter().enumerate() {
        let pool = connect(&DbConfig::new(SecretString::from(db.url().to_owned()))).await?;
        for _ in 0..3 {
            let (pool, choices) = (pool.clone(), choices.clone());
            tasks.push(tokio::spawn(async move {
                let mut taken = 0;
                while started.elapsed() < Duration::from_millis(1000) {
                    let took = pool.take_stigg_budget(&choices).await;
                    assert!(took.is_ok(), "order {i}: {took:?}");
                    taken += 1;
                }
                taken
            }));
        }
    }
    let sweeper = db.database().clone();
    let sweeps = tokio::spawn(async move {
        let mut deleted = 0;
        while started.elapsed() < Duration::from_millis(1000) {
            deleted += sweeper
                .forget_idle_buckets(Duration::ZERO)
                .await
                .unwrap_or(0);
        }
        deleted
    });
    let mut taken = 0;
    for task in tasks {
        taken += task.await?;
    }
    let deleted = sweeps.await?;
    assert!(taken > 100, "{taken} takes in 1 s");
    // The sweep did run: at least the rows no one takes went.
    assert!(deleted >= 20, "{deleted} swept");
    Ok(())
}

/// Three pools stand for three instances; twelve callers draw from one bucket of 50 calls a
/// second (a burst of 3) for 1.5 s. In any 200 ms window at most 3 + 10 calls go, whoever
/// makes them.
async fn three_pools_drawing_together_never_exceed_the_bucket_in_any_window(
    db: TestDatabase,
) -> TestResult {
    if db.backend() == Backend::Sqlite {
        return Ok(());
    }
    let bucket = [choice(&[&draw("op:shared", 20, 40)], 2000)];
    let started = Instant::now();
    let slots = Arc::new(Mutex::new(Vec::new()));
    let mut callers = Vec::new();
    for _ in 0..3 {
        let pool = connect(&DbConfig::new(SecretString::from(db.url().to_owned()))).await?;
        for _ in 0..4 {
            let (pool, slots, bucket) = (pool.clone(), Arc::clone(&slots), bucket.clone());
            callers.push(tokio::spawn(async move {
                while started.elapsed() < Duration::from_millis(1500) {
                    let Ok(BudgetTake {
                        chosen: Some(0),
                        wait,
                        ..
                    }) = pool.take_stigg_budget(&bucket).await
                    else {
                        panic!("a slot within 2 s");
                    };
                    tokio::time::sleep(wait).await;
                    slots.lock().unwrap().push(Instant::now());
                }
            }));
        }
    }
    for caller in callers {
        caller.await?;
    }
    let mut slots = slots.lock().unwrap().clone();
    slots.sort();
    let window = Duration::from_millis(200);
    // The calls' own timing jitters by a few milliseconds: one call of slack.
    let most = 3 + 10 + 1;
    for (i, start) in slots.iter().enumerate() {
        let within = slots[i..]
            .iter()
            .take_while(|at| **at - *start < window)
            .count();
        assert!(within <= most, "{within} calls in 200 ms from call {i}");
    }
    // And the bucket was used: close to its rate over the run.
    let span = slots[slots.len() - 1] - slots[0];
    let expected = span.as_secs_f64() / 0.020;
    assert!(
        slots.len() as f64 >= expected * 0.8,
        "{} calls over {span:?}",
        slots.len()
    );
    Ok(())
}
