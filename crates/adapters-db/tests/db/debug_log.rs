//! DebugLog: rows written and read back.

use anyhow::Context;
use onboarding_adapters_db::test_support::TestDatabase;
use onboarding_domain::ports::{DebugLog, DebugLogEntry};

use crate::support::{TestResult, on_both_backends, utc};

on_both_backends!(
    records_and_reads_back,
    a_batch_of_many_rows_is_one_insert,
    a_row_written_again_under_its_key_is_kept_once,
    nul_in_any_text_column_is_stored_as_a_replacement_character,
    old_rows_are_pruned_in_batches,
);

async fn records_and_reads_back(db: TestDatabase) -> TestResult {
    let ok = DebugLogEntry {
        key: "k-ok".into(),
        request_id: Some("req-1".into()),
        correlation_id: Some("corr-1".into()),
        tenant_id: Some("tenant-1".into()),
        method: "POST".into(),
        path: "/api/stigg/provision".into(),
        request_body: Some(r#"{"orgId":"org_1"}"#.into()),
        status: 200,
        error_code: None,
        duration_ms: 42,
        created_at: utc(2026, 11, 24, 10, 0, 0)?,
    };
    let failed = DebugLogEntry {
        key: "k-failed".into(),
        status: 500,
        error_code: Some("INTERNAL".into()),
        duration_ms: 3_000_000_000_000,
        created_at: utc(2026, 11, 24, 10, 0, 1)?,
        ..ok.clone()
    };
    let anonymous = DebugLogEntry {
        key: "k-anonymous".into(),
        request_id: None,
        correlation_id: None,
        tenant_id: None,
        request_body: None,
        status: 400,
        error_code: Some("BAD_REQUEST".into()),
        ..ok.clone()
    };
    db.record(std::slice::from_ref(&ok)).await?;
    db.record(&[failed.clone(), anonymous.clone()]).await?;
    db.record(&[]).await?;

    assert_eq!(db.debug_logs_for_request("req-1").await?, [ok, failed]);
    assert!(db.debug_logs_for_request("req-2").await?.is_empty());
    let recent = db.recent_debug_logs(1).await?;
    assert_eq!(recent.first().context("newest row")?, &anonymous);
    Ok(())
}

/// A batch as large as the group-commit writer sends: one statement, every row kept in order.
async fn a_batch_of_many_rows_is_one_insert(db: TestDatabase) -> TestResult {
    let base = DebugLogEntry {
        key: String::new(),
        request_id: None,
        correlation_id: Some("corr-batch".into()),
        tenant_id: None,
        method: "POST".into(),
        path: "/api/stigg/provision".into(),
        request_body: Some("{}".into()),
        status: 400,
        error_code: Some("BAD_REQUEST".into()),
        duration_ms: 1,
        created_at: utc(2026, 11, 24, 10, 0, 0)?,
    };
    let batch: Vec<_> = (0..500)
        .map(|i| DebugLogEntry {
            key: format!("k-{i}"),
            request_id: Some(format!("req-{i}")),
            ..base.clone()
        })
        .collect();
    db.record(&batch).await?;

    let recent = db.recent_debug_logs(1000).await?;
    assert_eq!(recent.len(), 500);
    assert_eq!(
        recent.first().and_then(|r| r.request_id.as_deref()),
        Some("req-499")
    );
    Ok(())
}

fn entry(key: &str, request_id: &str) -> DebugLogEntry {
    DebugLogEntry {
        key: key.into(),
        request_id: Some(request_id.into()),
        correlation_id: Some("corr".into()),
        tenant_id: None,
        method: "POST".into(),
        path: "/api/stigg/provision".into(),
        request_body: None,
        status: 200,
        error_code: None,
        duration_ms: 1,
        created_at: chrono::Utc::now(),
    }
}

/// A batch retried after an unknown outcome (its first write did land) adds only the rows
/// that were not written.
async fn a_row_written_again_under_its_key_is_kept_once(db: TestDatabase) -> TestResult {
    db.record(&[entry("k-1", "req-a")]).await?;
    db.record(&[entry("k-1", "req-a"), entry("k-2", "req-b")])
        .await?;
    db.record(&[entry("k-2", "req-b")]).await?;

    assert_eq!(db.debug_logs_for_request("req-a").await?.len(), 1);
    assert_eq!(db.debug_logs_for_request("req-b").await?.len(), 1);
    // Another request with the same request id is another row.
    db.record(&[entry("k-3", "req-a")]).await?;
    assert_eq!(db.debug_logs_for_request("req-a").await?.len(), 2);
    Ok(())
}

/// PostgreSQL refuses NUL in text; one such body must not fail the rows written with it.
async fn nul_in_any_text_column_is_stored_as_a_replacement_character(
    db: TestDatabase,
) -> TestResult {
    let hostile = DebugLogEntry {
        tenant_id: Some("t\0x".into()),
        method: "PO\0ST".into(),
        path: "/api/\0".into(),
        request_body: Some("abc\x00def".into()),
        error_code: Some("E\0".into()),
        ..entry("k-nul", "req\0nul")
    };
    db.record(&[entry("k-before", "req-innocent"), hostile])
        .await?;

    assert_eq!(db.debug_logs_for_request("req-innocent").await?.len(), 1);
    let stored = db.debug_logs_for_request("req\u{FFFD}nul").await?;
    let row = stored.first().context("the hostile row")?;
    assert_eq!(row.request_body.as_deref(), Some("abc\u{FFFD}def"));
    assert_eq!(row.path, "/api/\u{FFFD}");
    assert_eq!(row.method, "PO\u{FFFD}ST");
    assert_eq!(row.tenant_id.as_deref(), Some("t\u{FFFD}x"));
    assert_eq!(row.error_code.as_deref(), Some("E\u{FFFD}"));
    Ok(())
}

async fn old_rows_are_pruned_in_batches(db: TestDatabase) -> TestResult {
    let now = chrono::Utc::now();
    let rows: Vec<DebugLogEntry> = (0..25)
        .map(|i| DebugLogEntry {
            created_at: now - chrono::Duration::days(if i < 20 { 40 } else { 1 }),
            ..entry(&format!("k-prune-{i}"), &format!("req-prune-{i}"))
        })
        .collect();
    db.record(&rows).await?;
    let cutoff = now - chrono::Duration::days(30);

    assert_eq!(db.prune_debug_logs(cutoff, 8).await?, 8);
    assert_eq!(db.prune_debug_logs(cutoff, 8).await?, 8);
    assert_eq!(db.prune_debug_logs(cutoff, 8).await?, 4);
    assert_eq!(db.prune_debug_logs(cutoff, 8).await?, 0);
    assert_eq!(db.recent_debug_logs(100).await?.len(), 5);
    Ok(())
}
