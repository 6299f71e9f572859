//! LeaseStore: one holder per key at a time, on both backends, whatever the interleaving.

use std::time::Duration;

use anyhow::Context;
use chrono::Duration as Span;
use onboarding_adapters_db::test_support::TestDatabase;
use onboarding_domain::model::LeaseKey;
use onboarding_domain::ports::LeaseStore;

use crate::support::{TestResult, on_both_backends, sub_id, utc};

on_both_backends!(
    a_lease_is_exclusive_until_it_expires,
    a_late_release_leaves_the_next_holders_lease_alone,
    renew_extends_a_lease_still_held_and_refuses_a_lost_one,
    keys_are_independent,
    fifty_concurrent_takes_yield_one_holder,
);

const TTL: Duration = Duration::from_secs(30);

fn key() -> LeaseKey {
    LeaseKey::subscription(&sub_id("sub_A1"))
}

async fn a_lease_is_exclusive_until_it_expires(db: TestDatabase) -> TestResult {
    let t0 = utc(2026, 11, 24, 10, 0, 0)?;
    let first = db.try_take(&key(), t0, TTL).await?.context("first lease")?;
    assert_eq!(first.key.as_str(), "subscription:sub_A1");
    assert_eq!(first.expires_at, t0 + Span::seconds(30));
    // A waiting caller can be told when the holder's lease ends.
    assert_eq!(db.expiry(&key()).await?, Some(t0 + Span::seconds(30)));
    assert!(db.try_take(&key(), t0, TTL).await?.is_none());
    assert!(
        db.try_take(&key(), t0 + Span::seconds(29), TTL)
            .await?
            .is_none(),
        "the lease is live until it expires"
    );

    let second = db
        .try_take(&key(), t0 + Span::seconds(31), TTL)
        .await?
        .context("an expired lease can be taken over")?;
    assert_ne!(second.holder, first.holder);
    assert_eq!(db.expiry(&key()).await?, Some(t0 + Span::seconds(61)));

    db.release(&second).await?;
    assert_eq!(db.expiry(&key()).await?, None, "a released lease is gone");
    assert!(
        db.try_take(&key(), t0 + Span::seconds(32), TTL)
            .await?
            .is_some(),
        "a released lease can be taken at once"
    );
    Ok(())
}

async fn a_late_release_leaves_the_next_holders_lease_alone(db: TestDatabase) -> TestResult {
    let t0 = utc(2026, 11, 24, 10, 0, 0)?;
    let first = db.try_take(&key(), t0, TTL).await?.context("first")?;
    let second = db
        .try_take(&key(), t0 + Span::seconds(31), TTL)
        .await?
        .context("second")?;
    db.release(&first).await?;
    assert!(
        db.try_take(&key(), t0 + Span::seconds(32), TTL)
            .await?
            .is_none()
    );
    assert_eq!(db.expiry(&key()).await?, Some(second.expires_at));
    Ok(())
}

async fn renew_extends_a_lease_still_held_and_refuses_a_lost_one(db: TestDatabase) -> TestResult {
    let t0 = utc(2026, 11, 24, 10, 0, 0)?;
    let first = db.try_take(&key(), t0, TTL).await?.context("first")?;
    let renewed = db
        .renew(&first, t0 + Span::seconds(20), TTL)
        .await?
        .context("a live lease renews")?;
    assert_eq!(renewed.holder, first.holder);
    assert_eq!(renewed.expires_at, t0 + Span::seconds(50));
    assert!(
        db.try_take(&key(), t0 + Span::seconds(40), TTL)
            .await?
            .is_none(),
        "the renewal holds the key past the first expiry"
    );

    // Lapsed and taken by another holder: lost for good.
    let other = db
        .try_take(&key(), t0 + Span::seconds(51), TTL)
        .await?
        .context("taken over")?;
    assert!(
        db.renew(&renewed, t0 + Span::seconds(52), TTL)
            .await?
            .is_none()
    );
    assert_eq!(db.expiry(&key()).await?, Some(other.expires_at));
    // Released: nothing to renew.
    db.release(&other).await?;
    assert!(
        db.renew(&other, t0 + Span::seconds(53), TTL)
            .await?
            .is_none()
    );
    Ok(())
}

async fn keys_are_independent(db: TestDatabase) -> TestResult {
    let t0 = utc(2026, 11, 24, 10, 0, 0)?;
    let other = LeaseKey::subscription(&sub_id("sub_B2"));
    db.try_take(&key(), t0, TTL).await?.context("sub_A1")?;
    db.try_take(&other, t0, TTL).await?.context("sub_B2")?;
    assert_eq!(
        db.expiry(&LeaseKey::subscription(&sub_id("sub_Unknown1")))
            .await?,
        None
    );
    Ok(())
}

async fn fifty_concurrent_takes_yield_one_holder(db: TestDatabase) -> TestResult {
    let now = chrono::Utc::now();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let db = db.database().clone();
            tokio::spawn(async move { db.try_take(&key(), now, TTL).await })
        })
        .collect();
    let mut held = Vec::new();
    for task in tasks {
        if let Some(lease) = task.await?? {
            held.push(lease);
        }
    }
    assert_eq!(held.len(), 1, "exactly one caller holds the key: {held:?}");
    Ok(())
}
