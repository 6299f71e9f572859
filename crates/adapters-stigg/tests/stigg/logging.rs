//! One structured event per attempt, warn for failures, and never the API key.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use onboarding_domain::ports::{StiggError, StiggGateway};
use tracing_subscriber::fmt::MakeWriter;
use wiremock::{MockServer, ResponseTemplate};

use crate::support::*;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Self;
    fn make_writer(&'a self) -> Self {
        self.clone()
    }
}

#[tokio::test]
async fn every_attempt_is_logged_with_its_fields_and_without_the_key() -> TestResult {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    // The test runtime is single-threaded, so a thread-local default sees every event.
    let _guard = tracing::subscriber::set_default(subscriber);
    let server = MockServer::start().await;
    stigg_route("POST", CREATE_CUSTOMER, ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    stigg_route("POST", CREATE_CUSTOMER, customer_created())
        .mount(&server)
        .await;
    stigg_route("POST", CREATE_SUBSCRIPTION, ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let gateway = gateway_with(config_for(&server), RecordingSleeper::instant())?;

    gateway.provision_customer(&customer()?, &ctx15()?).await?;
    let refused = gateway
        .provision_subscription(&trialing_subscription()?, &ctx15()?)
        .await;

    assert_eq!(refused, Err(StiggError::Unauthorized));
    let logs = captured.text();
    let lines: Vec<&str> = logs.lines().filter(|l| l.contains("Stigg call")).collect();
    assert_eq!(lines.len(), 3, "{logs}");
    let expect = |line: &str, level: &str, fields: &[&str]| {
        assert!(line.contains(level), "{line}");
        for field in fields {
            assert!(line.contains(field), "missing {field} in {line}");
        }
        assert!(line.contains("duration_ms="), "{line}");
        assert!(line.contains("correlation_id=corr-42"), "{line}");
    };
    expect(
        lines[0],
        "WARN",
        &[
            "operation=\"provision_customer\"",
            "attempt=1",
            "status=503",
            "retry_in_ms=",
        ],
    );
    expect(
        lines[1],
        "INFO",
        &[
            "operation=\"provision_customer\"",
            "attempt=2",
            "status=201",
        ],
    );
    expect(
        lines[2],
        "WARN",
        &[
            "operation=\"provision_subscription\"",
            "attempt=1",
            "status=401",
        ],
    );
    assert!(!logs.contains(API_KEY), "key leaked: {logs}");
    Ok(())
}
