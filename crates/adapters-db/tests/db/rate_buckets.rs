//! The shared Stigg budget: GCRA buckets in PostgreSQL, timed by the database's clock.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use onboarding_adapters_db::test_support::TestDatabase;
use onboarding_adapters_db::{Backend, DbConfig, SharedBucket, connect};
use secrecy::SecretString;

use crate::support::{TestResult, on_both_backends};

on_both_backends!(
    a_bucket_answers_now_then_spaces_slots_and_refuses_past_the_wait,
    three_pools_drawing_together_never_exceed_the_bucket_in_any_window,
);

const ONE_BY_ONE: SharedBucket<'static> = SharedBucket {
    key: "op:test",
    period: Duration::from_millis(100),
    tolerance: Duration::ZERO,
};

fn near(got: Option<Duration>, millis: u64) -> bool {
    got.is_some_and(|wait| wait.as_millis().abs_diff(u128::from(millis)) <= 40)
}

async fn a_bucket_answers_now_then_spaces_slots_and_refuses_past_the_wait(
    db: TestDatabase,
) -> TestResult {
    let wait = Duration::from_secs(1);
    if db.backend() == Backend::Sqlite {
        // One process: the Stigg client keeps its budget in memory.
        assert!(db.take_shared_slot(&ONE_BY_ONE, wait).await.is_err());
        return Ok(());
    }
    let first = db.take_shared_slot(&ONE_BY_ONE, wait).await?;
    assert_eq!(first, Some(Duration::ZERO));
    let second = db.take_shared_slot(&ONE_BY_ONE, wait).await?;
    assert!(near(second, 100), "{second:?}");
    let third = db.take_shared_slot(&ONE_BY_ONE, wait).await?;
    assert!(near(third, 200), "{third:?}");
    // Past the caller's wait: refused, and nothing booked, so the next one gets that slot.
    let refused = db
        .take_shared_slot(&ONE_BY_ONE, Duration::from_millis(50))
        .await?;
    assert_eq!(refused, None);
    let fourth = db.take_shared_slot(&ONE_BY_ONE, wait).await?;
    assert!(near(fourth, 300), "{fourth:?}");
    // Another key is another bucket.
    let other = SharedBucket {
        key: "customer:org_1",
        ..ONE_BY_ONE
    };
    assert_eq!(
        db.take_shared_slot(&other, wait).await?,
        Some(Duration::ZERO)
    );
    // Idle buckets are forgotten; busy ones kept.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        db.take_shared_slot(&ONE_BY_ONE, wait).await?,
        Some(Duration::ZERO)
    );
    assert_eq!(db.forget_idle_buckets(Duration::from_millis(100)).await?, 1);
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM stigg_rate_buckets")
            .await?,
        1
    );
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
    let bucket = SharedBucket {
        key: "op:shared",
        period: Duration::from_millis(20),
        tolerance: Duration::from_millis(40),
    };
    let started = Instant::now();
    let slots = Arc::new(Mutex::new(Vec::new()));
    let mut callers = Vec::new();
    for _ in 0..3 {
        let pool = connect(&DbConfig::new(SecretString::from(db.url().to_owned()))).await?;
        for _ in 0..4 {
            let (pool, slots) = (pool.clone(), Arc::clone(&slots));
            callers.push(tokio::spawn(async move {
                while started.elapsed() < Duration::from_millis(1500) {
                    let Ok(Some(wait)) =
                        pool.take_shared_slot(&bucket, Duration::from_secs(2)).await
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
