//! Scripted faults: answers that replace (or delay) the real handling of matching API requests,
//! so that a client's retry and timeout handling can be exercised on demand.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use actix_web::body::{BodySize, MessageBody};
use actix_web::web::Bytes;
use emulator_kit::{FaultScope, Scoped, status_problem, take_first};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Sleep;

/// A fault applied to the next `times` API requests that match `method` and `path_prefix`
/// (each unset field matches everything). Faults are consumed in the order they were pushed;
/// one request consumes at most one fault.
///
/// JSON (admin route, camelCase fields, `type` tag in snake_case):
/// `{"method": "POST", "pathPrefix": "/api/v1/customers", "times": 2,
///   "action": {"type": "status", "status": 503, "body": {...}, "retryAfter": "1", "retryAfterMs": 250}}`,
/// `{"action": {"type": "delay", "ms": 6000}}`, `{"action": {"type": "truncate"}}`,
/// `{"action": {"type": "reset"}}`. `method`, `pathPrefix` and `times` (default 1) are optional.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fault {
    #[serde(flatten)]
    pub scope: FaultScope,
    pub action: FaultAction,
}

/// What a fault does to the request it hits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum FaultAction {
    /// Answer `status` instead of handling the request, with `body` (default
    /// `{"code":"InjectedFault",...}`) and, when set, `Retry-After` / `retry-after-ms` headers.
    Status {
        status: u16,
        body: Option<Value>,
        retry_after: Option<String>,
        retry_after_ms: Option<u64>,
    },
    /// Wait `ms` milliseconds, then handle the request normally.
    Delay { ms: u64 },
    /// Send a 200 head whose `Content-Length` promises more than is sent, send part of a JSON
    /// body, then drop the connection: the client gets the status and headers, and reading the
    /// body fails.
    Truncate,
    /// Drop the connection before anything of the response is written: the client's `send`
    /// fails (hyper: "connection closed before message completed").
    Reset,
}

impl Fault {
    /// A fault hitting the next matching request once; narrow it with the `on_*`/`times` methods.
    pub fn new(action: FaultAction) -> Self {
        Self {
            scope: FaultScope::default(),
            action,
        }
    }

    /// Answer `status` with the default body and no retry hint.
    pub fn status(status: u16) -> Self {
        Self::new(FaultAction::Status {
            status,
            body: None,
            retry_after: None,
            retry_after_ms: None,
        })
    }

    /// Why this fault cannot be applied, if it cannot.
    pub(crate) fn problem(&self) -> Option<String> {
        self.scope.problem().or(match self.action {
            FaultAction::Status { status, .. } => status_problem(status),
            _ => None,
        })
    }
}

impl Scoped for Fault {
    fn scope_mut(&mut self) -> &mut FaultScope {
        &mut self.scope
    }
}

/// Takes one use of the first fault matching the request, dropping the fault once used up.
pub(crate) fn take_matching(
    faults: &mut VecDeque<Fault>,
    method: &str,
    path: &str,
) -> Option<FaultAction> {
    take_first(
        faults,
        |fault| fault.scope.matches(method, path),
        |fault| &mut fault.scope.times,
    )
    .map(|fault| fault.action)
}

/// How long a truncated body waits before failing: long enough for actix to flush the head and
/// the partial body to the socket (it only writes when the body stream is pending).
const TRUNCATE_PAUSE: Duration = Duration::from_millis(50);

/// Body of a [`FaultAction::Truncate`] answer: a sized body that stops short, then errors,
/// which makes actix close the connection mid-body.
pub(crate) struct TruncatedBody {
    partial: Option<Bytes>,
    declared: u64,
    pause: Option<Pin<Box<Sleep>>>,
}

impl TruncatedBody {
    pub(crate) fn new() -> Self {
        let partial = Bytes::from_static(br#"{"data":{"id":"trunc"#);
        Self {
            declared: partial.len() as u64 + 64,
            partial: Some(partial),
            pause: None,
        }
    }
}

impl MessageBody for TruncatedBody {
    type Error = io::Error;

    fn size(&self) -> BodySize {
        BodySize::Sized(self.declared)
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        if let Some(partial) = self.partial.take() {
            return Poll::Ready(Some(Ok(partial)));
        }
        let pause = self
            .pause
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(TRUNCATE_PAUSE)));
        ready!(pause.as_mut().poll(cx));
        Poll::Ready(Some(Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "emulator fault: body truncated",
        ))))
    }
}

/// Body of a [`FaultAction::Reset`] answer: it fails on the first poll, before actix has
/// flushed the response head, so the connection closes with nothing written.
pub(crate) struct ResetBody;

impl MessageBody for ResetBody {
    type Error = io::Error;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Poll::Ready(Some(Err(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "emulator fault: connection reset",
        ))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_matching_fault_is_used_and_dropped_when_used_up() {
        let mut faults = VecDeque::from([
            Fault::status(500).on_method("get"),
            Fault::status(503).on_path("/api/v1/customers").times(2),
        ]);
        let hit = take_matching(&mut faults, "POST", "/api/v1/customers");
        assert!(matches!(hit, Some(FaultAction::Status { status: 503, .. })));
        assert!(take_matching(&mut faults, "POST", "/api/v1/subscriptions").is_none());
        assert!(take_matching(&mut faults, "POST", "/api/v1/customers").is_some());
        assert!(take_matching(&mut faults, "POST", "/api/v1/customers").is_none());
        let hit = take_matching(&mut faults, "GET", "/api/v1/subscriptions/x");
        assert!(matches!(hit, Some(FaultAction::Status { status: 500, .. })));
        assert!(faults.is_empty());
    }

    #[test]
    fn json_shape_is_camel_case_with_a_snake_case_type_tag() -> serde_json::Result<()> {
        let fault: Fault = serde_json::from_value(serde_json::json!({
            "pathPrefix": "/api/v1/subscriptions",
            "action": {"type": "status", "status": 429, "retryAfterMs": 250}
        }))?;
        assert_eq!(fault.scope.times, 1);
        assert_eq!(
            fault.scope.path_prefix.as_deref(),
            Some("/api/v1/subscriptions")
        );
        assert_eq!(
            fault.action,
            FaultAction::Status {
                status: 429,
                body: None,
                retry_after: None,
                retry_after_ms: Some(250)
            }
        );
        let delay: FaultAction = serde_json::from_str(r#"{"type":"delay","ms":10}"#)?;
        assert_eq!(delay, FaultAction::Delay { ms: 10 });
        assert_eq!(
            serde_json::to_value(FaultAction::Reset)?,
            serde_json::json!({"type": "reset"})
        );
        Ok(())
    }

    #[test]
    fn unusable_faults_are_explained() {
        assert!(Fault::status(503).problem().is_none());
        assert!(Fault::status(99).problem().is_some());
        assert!(Fault::new(FaultAction::Reset).times(0).problem().is_some());
    }
}
