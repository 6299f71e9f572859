//! DebugLog: rows written and read back.

use anyhow::Context;
use onboarding_adapters_db::test_support::TestDatabase;
use onboarding_domain::ports::{DebugLog, DebugLogEntry};

use crate::support::{TestResult, on_both_backends, utc};

on_both_backends!(records_and_reads_back, a_batch_of_many_rows_is_one_insert);

async fn records_and_reads_back(db: TestDatabase) -> TestResult {
    let ok = DebugLogEntry {
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
        status: 500,
        error_code: Some("INTERNAL".into()),
        duration_ms: 3_000_000_000_000,
        created_at: utc(2026, 11, 24, 10, 0, 1)?,
        ..ok.clone()
    };
    let anonymous = DebugLogEntry {
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
