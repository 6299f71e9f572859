//! The emulator's scripted faults: transient failures are retried with backoff inside the
//! deadline, final ones are not.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use onboarding_adapters_stripe::StripeClient;
use onboarding_domain::ports::{StripeError, StripeReader};
use stripe_emulator::{ApiFault, NewCustomer, Scoped};

use crate::support::{
    RecordingSleeper, TestResult, client_with, config, ctx, ctx15, cus, start, sub,
};

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

fn customer(id: &str) -> NewCustomer {
    NewCustomer {
        id: Some(id.to_owned()),
        ..NewCustomer::default()
    }
}

#[tokio::test]
async fn a_500_then_a_429_are_retried_with_backoff() -> TestResult {
    let running = start().await?;
    let emulator = running.emulator();
    emulator.create_customer(customer("cus_Flaky"))?;
    emulator.push_api_fault(ApiFault::status(500).on_path("/v1/customers"));
    emulator.push_api_fault(ApiFault::status(429).on_path("/v1/customers"));
    let sleeper = RecordingSleeper::instant();
    let client = client_with(config(&running.base_url()), sleeper.clone());

    let read = client.customer(&cus("cus_Flaky"), &ctx15()).await?;

    assert!(read.is_some_and(|c| !c.deleted));
    let statuses: Vec<_> = emulator.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 429, 200]);
    // Full jitter picking its ceiling: 500 ms, then twice that.
    assert_eq!(sleeper.sleeps(), [ms(500), ms(1000)]);
    running.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_persistent_503_ends_unavailable_with_the_attempts_counted() -> TestResult {
    let running = start().await?;
    let emulator = running.emulator();
    emulator.push_api_fault(ApiFault::status(503).times(10));
    let mut config = config(&running.base_url());
    config.max_attempts = 4;
    let sleeper = RecordingSleeper::instant();
    let client = client_with(config, sleeper.clone());

    let error = client
        .subscription(&sub("sub_Down"), &ctx15())
        .await
        .expect_err("Stripe is down");

    assert_eq!(
        error,
        StripeError::Unavailable {
            attempts: 4,
            cause: "HTTP 503".into()
        }
    );
    assert!(error.is_transient());
    assert_eq!(emulator.requests().len(), 4);
    assert_eq!(sleeper.sleeps(), [ms(500), ms(1000), ms(2000)]);
    let (left, _) = emulator.pending_faults();
    assert_eq!(left[0].scope.times, 6);
    running.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_slow_answer_is_cut_at_the_deadline() -> TestResult {
    let running = start().await?;
    let emulator = running.emulator();
    emulator.create_customer(customer("cus_Slow"))?;
    emulator.push_api_fault(ApiFault::delay(1500).times(3));
    // A per-attempt timeout far longer than the deadline: the deadline cuts the attempt.
    let client = client_with(config(&running.base_url()), RecordingSleeper::real());

    let started = Instant::now();
    let error = client
        .customer(&cus("cus_Slow"), &ctx(ms(300)))
        .await
        .expect_err("too slow");
    let elapsed = started.elapsed();

    let StripeError::Unavailable { attempts, cause } = &error else {
        panic!("not Unavailable: {error:?}");
    };
    assert_eq!(*attempts, 1);
    assert!(cause.starts_with("timeout after"), "{cause}");
    assert!(elapsed >= ms(250), "{elapsed:?}");
    assert!(elapsed < ms(900), "{elapsed:?}");
    // Dropped, not stopped: a graceful stop would wait for the delayed answer.
    drop(running);
    Ok(())
}

#[tokio::test]
async fn a_backoff_that_would_outlast_the_deadline_ends_the_call_at_once() -> TestResult {
    let running = start().await?;
    let emulator = running.emulator();
    emulator.push_api_fault(ApiFault::status(502).times(3));
    let sleeper = RecordingSleeper::real();
    let client = client_with(config(&running.base_url()), sleeper.clone());

    let started = Instant::now();
    // The first backoff (500 ms) would end after the deadline.
    let error = client
        .subscription(&sub("sub_Late"), &ctx(ms(400)))
        .await
        .expect_err("no time to retry");

    assert_eq!(
        error,
        StripeError::Unavailable {
            attempts: 1,
            cause: "HTTP 502".into()
        }
    );
    assert!(started.elapsed() < ms(300), "{:?}", started.elapsed());
    assert!(sleeper.sleeps().is_empty());
    assert_eq!(emulator.requests().len(), 1);
    running.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_deadline_already_passed_sends_nothing() -> TestResult {
    let running = start().await?;
    let client = StripeClient::new(config(&running.base_url()))?;

    let error = client
        .customer(&cus("cus_Any"), &ctx(Duration::ZERO))
        .await
        .expect_err("no time at all");

    assert!(
        matches!(&error, StripeError::Unavailable { attempts: 0, cause } if cause.contains("deadline")),
        "{error:?}"
    );
    assert!(running.emulator().requests().is_empty());
    running.stop().await;
    Ok(())
}

#[tokio::test]
async fn other_4xx_are_rejected_at_once_with_stripes_words() -> TestResult {
    let running = start().await?;
    let emulator = running.emulator();
    emulator.push_api_fault(ApiFault::status(400));
    // A 404 without `resource_missing` (an unknown URL) is no "absent".
    emulator.push_api_fault(ApiFault::status(404));
    let sleeper = RecordingSleeper::instant();
    let client = client_with(config(&running.base_url()), sleeper.clone());

    let bad = client.customer(&cus("cus_X"), &ctx15()).await;
    let lost = client.subscription(&sub("sub_X"), &ctx15()).await;

    assert_eq!(
        bad,
        Err(StripeError::Rejected {
            status: 400,
            code: "invalid_request_error".into(),
            message: "Injected fault: HTTP 400".into(),
        })
    );
    assert_eq!(
        lost,
        Err(StripeError::Rejected {
            status: 404,
            code: "invalid_request_error".into(),
            message: "Injected fault: HTTP 404".into(),
        })
    );
    assert!(sleeper.sleeps().is_empty());
    assert_eq!(emulator.requests().len(), 2);
    running.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_refused_connection_is_retried_then_unavailable() -> TestResult {
    // A port nobody listens on any more.
    let closed = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let sleeper = RecordingSleeper::instant();
    let client = client_with(config(&format!("http://{closed}")), sleeper.clone());

    let error = client
        .customer(&cus("cus_Any"), &ctx15())
        .await
        .expect_err("nobody listens");

    assert_eq!(
        error,
        StripeError::Unavailable {
            attempts: 3,
            cause: "connection error".into()
        }
    );
    assert_eq!(sleeper.sleeps().len(), 2);
    Ok(())
}
