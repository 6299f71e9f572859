//! Requests an attacker or a broken client would send: control characters and non-ASCII bytes
//! in headers, oversized and deeply nested bodies, repeated JSON fields, ids at their length
//! limits, clients that send their headers byte by byte or never finish them, and a thousand
//! idle connections. Some need a raw TCP client writing HTTP/1.1 by hand, because reqwest
//! refuses to send them. All traffic goes to 127.0.0.1; every loop is bounded in count and
//! time.

use std::time::{Duration, Instant};

use onboarding_adapters_db::Backend;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::helpers::{
    TestApp, acme_body, detail_fields, on_both_backends, read, spawn_app, spawn_app_on,
};

/// The server's `host:port`.
fn socket(app: &TestApp) -> &str {
    app.address.trim_start_matches("http://")
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(socket(app))
        .await
        .expect("the service accepts a connection")
}

/// An answer read off a raw connection.
#[derive(Debug)]
struct RawResponse {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl RawResponse {
    fn parse(bytes: &[u8]) -> Self {
        let split = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(bytes.len());
        let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {head:?}"));
        Self {
            status,
            head,
            body: bytes.get(split + 4..).unwrap_or_default().to_vec(),
        }
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// A response header's value (names compared case-insensitively).
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Writes `request` as is, then reads until the server closes the connection (the requests
/// here say `Connection: close`, or are refused and closed).
async fn exchange(app: &TestApp, request: &[u8]) -> RawResponse {
    let mut stream = connect(app).await;
    stream
        .write_all(request)
        .await
        .expect("the request is written");
    let mut answer = Vec::new();
    timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("an answer within 10 s")
        .expect("the answer is read");
    RawResponse::parse(&answer)
}

/// A provisioning request with the given raw header lines and body.
fn raw_post(header_lines: &[u8], body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST /api/stigg/provision HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(header_lines);
    request.extend_from_slice(b"\r\n");
    request.extend_from_slice(body);
    request
}

/// The service still answers at once.
async fn assert_still_serving(app: &TestApp) {
    let started = Instant::now();
    let response = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .expect("the service answers /healthz");
    assert_eq!(response.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// Headers

/// CR, NUL and DEL inside a header value, and a header name that is not a token, are broken
/// HTTP: the server's HTTP parser answers 400 and closes before any application code runs, so
/// no debug-log row is written (there is no request to log).
#[tokio::test]
async fn control_characters_in_headers_are_refused_by_the_http_parser() {
    let app = spawn_app().await;
    let broken: [&[u8]; 5] = [
        b"x-request-id: a\rb\r\nx-correlation-id: c-cr\r\n",
        b"x-request-id: a\0b\r\nx-correlation-id: c-nul\r\n",
        b"x-request-id: a\x7fb\r\nx-correlation-id: c-del\r\n",
        b"x-request-id: r\r\nx-correlation-id: c-name\r\nx-t\xc3\xa9nant: t\r\n",
        b"x-request-id: r\r\nx-correlation-id: c-fold\r\n continued\r\n",
    ];
    for head in broken {
        let response = exchange(&app, &raw_post(head, b"{}")).await;
        assert_eq!(
            response.status,
            400,
            "{:?}: {response:?}",
            String::from_utf8_lossy(head)
        );
        assert_eq!(response.header("x-request-id"), None);
    }
    assert_eq!(app.debug_log_count_where("TRUE").await, 0);
    assert!(app.stigg.emulator().requests().is_empty());
    assert_still_serving(&app).await;
}

/// A CR LF inside what a client meant as one value ends the header line: what follows is a
/// header of its own, never echoed. Only a valid `x-request-id` is echoed, so a response can
/// never be split.
#[tokio::test]
async fn a_crlf_in_a_header_value_cannot_split_the_response() {
    let app = spawn_app().await;
    let head = b"x-request-id: req-crlf\r\nset-cookie: injected=1\r\nx-correlation-id: c\r\n";
    let response = exchange(&app, &raw_post(head, br#"{"orgId":"org_1"}"#)).await;
    assert_eq!(response.status, 400, "{response:?}");
    assert_eq!(response.header("x-request-id"), Some("req-crlf"));
    assert_eq!(response.header("set-cookie"), None);
    assert!(!response.head.to_ascii_lowercase().contains("injected"));
    assert_eq!(app.debug_rows("req-crlf").await.len(), 1);
}

/// Bytes above 0x7F are legal on the wire (obs-text) but not in an id: 400 naming the header,
/// the id neither echoed nor stored, and the request logged once.
#[tokio::test]
async fn non_ascii_header_values_are_400_naming_the_header() {
    let app = spawn_app().await;
    let cases: [(&[u8], &str); 3] = [
        (
            b"x-request-id: r\xc3\xa9q\r\nx-correlation-id: c-utf8\r\n",
            "c-utf8",
        ),
        (
            b"x-request-id: r\xffq\r\nx-correlation-id: c-latin1\r\n",
            "c-latin1",
        ),
        (
            b"x-request-id: r\r\nx-correlation-id: c-tenant\r\nx-tenant-id: t\xe2\x80\x8b\r\n",
            "c-tenant",
        ),
    ];
    for (head, correlation_id) in cases {
        let response = exchange(&app, &raw_post(head, &acme_bytes())).await;
        assert_eq!(response.status, 400, "{response:?}");
        let body = response.json();
        assert_eq!(body["code"], "BAD_REQUEST");
        let expected = if correlation_id == "c-tenant" {
            "x-tenant-id"
        } else {
            "x-request-id"
        };
        assert_eq!(detail_fields(&body), [expected], "{body}");
        assert_eq!(body["correlationId"], correlation_id);
        if expected == "x-request-id" {
            assert_eq!(body["requestId"], Value::Null);
            assert_eq!(response.header("x-request-id"), None);
        }
        assert_eq!(
            app.debug_log_count_where(&format!("correlation_id = '{correlation_id}'"))
                .await,
            1
        );
    }
    assert!(app.stigg.emulator().requests().is_empty());
}

fn acme_bytes() -> Vec<u8> {
    acme_body().to_string().into_bytes()
}

// ---------------------------------------------------------------------------------------------
// Bodies

const MIB: usize = 1024 * 1024;

/// 1 MiB, declared with `Content-Length` (refused on the declaration, before reading) and sent
/// chunked (refused once 16 KiB have arrived): 413 either way, one debug-log row, and the
/// service serves on. The client keeps writing in the background: the server may answer and
/// close before it has read the rest.
#[tokio::test]
async fn a_1_mib_body_is_413_with_its_debug_row() {
    let app = spawn_app().await;
    let body = format!(r#"{{"orgId":"org_1","padding":"{}"}}"#, "x".repeat(MIB));

    for (request_id, chunked) in [("req-mib-length", false), ("req-mib-chunked", true)] {
        let mut head = format!(
            "POST /api/stigg/provision HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
             x-request-id: {request_id}\r\nx-correlation-id: c\r\nConnection: close\r\n"
        );
        let mut payload = Vec::new();
        if chunked {
            head.push_str("Transfer-Encoding: chunked\r\n\r\n");
            for chunk in body.as_bytes().chunks(64 * 1024) {
                payload.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                payload.extend_from_slice(chunk);
                payload.extend_from_slice(b"\r\n");
            }
            payload.extend_from_slice(b"0\r\n\r\n");
        } else {
            head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
            payload.extend_from_slice(body.as_bytes());
        }
        let stream = connect(&app).await;
        let (mut reader, mut writer) = stream.into_split();
        writer
            .write_all(head.as_bytes())
            .await
            .expect("the request head is written");
        let upload = tokio::spawn(async move {
            // The server may stop reading once it has answered: a write error is expected.
            let _ = writer.write_all(&payload).await;
            writer
        });
        let mut answer = Vec::new();
        let read = timeout(Duration::from_secs(10), reader.read_to_end(&mut answer)).await;
        assert!(read.is_ok(), "no answer within 10 s");
        upload.abort();
        let response = RawResponse::parse(&answer);
        assert_eq!(response.status, 413, "{request_id}: {}", response.head);
        let json = response.json();
        assert_eq!(json["code"], "PAYLOAD_TOO_LARGE");
        assert_eq!(json["requestId"], request_id);
        let rows = app.debug_rows(request_id).await;
        assert_eq!(rows.len(), 1, "{request_id}: {rows:?}");
        assert_eq!(
            (rows[0].status, rows[0].error_code.as_deref()),
            (413, Some("PAYLOAD_TOO_LARGE"))
        );
    }
    assert!(app.stigg.emulator().requests().is_empty());
    assert_still_serving(&app).await;
}

/// serde_json stops at 128 levels of nesting, so a deep body is an error, not a stack
/// overflow: 400 naming `body`, anywhere in the body, unknown fields included (the contract
/// ignores unknown fields, but they must still be JSON the service can read). Nesting within
/// the limit in an unknown field is ignored like any unknown field.
#[tokio::test]
async fn deeply_nested_json_is_400_and_nothing_crashes() {
    let app = spawn_app().await;
    let within_16_kib = [
        format!("{}{}", "[".repeat(8000), "]".repeat(8000)),
        format!("{}1{}", r#"{"a":"#.repeat(2500), "}".repeat(2500)),
        // A valid request with an unknown field 200 levels deep, written by hand.
        format!(
            r#"{},"deep":{}{}}}"#,
            acme_body().to_string().trim_end_matches('}'),
            "[".repeat(200),
            "]".repeat(200)
        ),
    ];
    for (i, raw) in within_16_kib.iter().enumerate() {
        assert!(raw.len() <= 16 * 1024);
        let request_id = format!("req-deep-{i}");
        let response = app
            .client
            .post(format!("{}/api/stigg/provision", app.address))
            .header("x-request-id", &request_id)
            .header("x-correlation-id", "c")
            .header("content-type", "application/json")
            .body(raw.clone())
            .send()
            .await
            .expect("the service answers");
        let (status, body) = read(response).await;
        assert_eq!(status, 400, "{i}: {body}");
        assert_eq!(detail_fields(&body), ["body"], "{i}: {body}");
        let message = body["details"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains("recursion limit"), "{i}: {message}");
        assert_eq!(app.debug_rows(&request_id).await.len(), 1);
    }

    let mut shallow = acme_body();
    let mut nested = json!(1);
    for _ in 0..100 {
        nested = json!([nested]);
    }
    shallow["deep"] = nested;
    let (status, body) = app.provision(&shallow, "req-deep-ok").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("NOT_FOUND")),
        "{body}"
    );
    assert!(app.stigg.emulator().requests().is_empty());
    assert_still_serving(&app).await;
}

/// The contract does not say what a repeated JSON name means, and serde_json silently keeps the
/// last. The service refuses a repeated contract field, whatever the values, with 400 naming it
/// ("must be given once", as for a repeated header): otherwise `"orgId":"a", …, "orgId":"b"`
/// would provision `b` while a reader of the first value (a proxy, a log) believes `a`. A
/// repeated unknown field is ignored, like any unknown field.
#[tokio::test]
async fn a_repeated_body_field_is_400_and_a_repeated_unknown_field_is_ignored() {
    let app = spawn_app_on(Backend::Sqlite).await;
    app.seed_acme().await;
    let valid = r#""stripeCustomerId":"cus_A1","stripeSubscriptionId":"sub_A1","planCode":"plan_starter_m""#;
    let cases = [
        (
            format!(r#"{{"orgId":"org_2","orgId":"org_1",{valid}}}"#),
            vec!["orgId"],
        ),
        (
            format!(r#"{{"orgId":"org_1","orgId":"org_1",{valid}}}"#),
            vec!["orgId"],
        ),
        (
            format!(r#"{{"orgId":"org_1",{valid},"planCode":"plan_pro_m","planCode":"x"}}"#),
            vec!["planCode"],
        ),
        (
            format!(r#"{{"orgId":"org_1",{valid},"stripeCustomerId":"cus_A1","orgId":null}}"#),
            vec!["orgId", "stripeCustomerId"],
        ),
    ];
    for (i, (raw, fields)) in cases.iter().enumerate() {
        let response = exchange(
            &app,
            &raw_post(
                format!("x-request-id: req-dup-{i}\r\nx-correlation-id: c\r\n").as_bytes(),
                raw.as_bytes(),
            ),
        )
        .await;
        assert_eq!(response.status, 400, "{raw}");
        let body = response.json();
        assert_eq!(&detail_fields(&body), fields, "{raw}: {body}");
        assert_eq!(body["details"][0]["message"], "must be given once");
        assert_eq!(app.debug_rows(&format!("req-dup-{i}")).await.len(), 1);
    }
    assert!(app.stigg.emulator().requests().is_empty());

    let raw = format!(r#"{{"orgId":"org_1",{valid},"note":"a","note":"b"}}"#);
    let response = exchange(
        &app,
        &raw_post(
            b"x-request-id: req-dup-ok\r\nx-correlation-id: c\r\n",
            raw.as_bytes(),
        ),
    )
    .await;
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
}

// ---------------------------------------------------------------------------------------------
// Length limits

on_both_backends!(ids_at_their_length_limits_are_accepted_one_more_is_refused);

/// The longest valid ids go through the database and Stigg; one character more is a 400 naming
/// the field or header.
async fn ids_at_their_length_limits_are_accepted_one_more_is_refused(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let org_id = format!("O{}", "r".repeat(127));
    let customer = format!("cus_{}", "C".repeat(250));
    let subscription = format!("sub_{}", "S".repeat(250));
    app.exec(&format!(
        "INSERT INTO organizations (id, name, tenant_id, stripe_customer_id) VALUES ('{org_id}', 'Long', NULL, '{customer}');
         INSERT INTO subscriptions (id, organization_id, stripe_subscription_id, plan_code, status, trial_ends_at)
         VALUES ('s_long', '{org_id}', '{subscription}', 'plan_starter_m', 'trialing', '2030-01-15 00:00:00');"
    ))
    .await;
    let body = json!({
        "orgId": org_id,
        "stripeCustomerId": customer,
        "stripeSubscriptionId": subscription,
        "planCode": "plan_starter_m",
    });
    let request_id = "R".repeat(128);
    let correlation_id = "~".repeat(128);
    let response = app
        .client
        .post(format!("{}/api/stigg/provision", app.address))
        .header("x-request-id", &request_id)
        .header("x-correlation-id", &correlation_id)
        .header("x-tenant-id", "t".repeat(128))
        .json(&body)
        .send()
        .await
        .expect("the service answers");
    assert_eq!(
        response.headers().get("x-request-id").map(|v| v.as_bytes()),
        Some(request_id.as_bytes())
    );
    let (status, answer) = read(response).await;
    // The organization has no tenant, so a tenant header makes it someone else's: 404 means
    // the 128-character tenant id was accepted and used.
    assert_eq!(
        (status, answer["code"].as_str()),
        (404, Some("NOT_FOUND")),
        "{answer}"
    );

    let response = app
        .client
        .post(format!("{}/api/stigg/provision", app.address))
        .header("x-request-id", &request_id)
        .header("x-correlation-id", &correlation_id)
        .json(&body)
        .send()
        .await
        .expect("the service answers");
    let (status, answer) = read(response).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["stiggCustomerId"], body["orgId"]);
    assert_eq!(answer["stiggSubscriptionId"], body["stripeSubscriptionId"]);
    assert_eq!(answer["requestId"], request_id.as_str());
    assert_eq!(app.stigg.emulator().subscriptions().len(), 1);
    assert_eq!(app.debug_rows(&request_id).await.len(), 2);

    let one_more = [
        ("orgId", format!("{org_id}r")),
        ("stripeCustomerId", format!("{customer}C")),
        ("stripeSubscriptionId", format!("{subscription}S")),
        ("planCode", "p".repeat(65)),
    ];
    for (field, value) in one_more {
        let mut long = body.clone();
        long[field] = Value::from(value);
        let (status, answer) = app.provision(&long, "req-long").await;
        assert_eq!(status, 400, "{field}");
        assert_eq!(detail_fields(&answer), [field]);
        assert!(
            !answer["details"][0]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("unknown plan code"),
            "{answer}"
        );
    }
    // 64 characters follow the rule; such a code just is not in the catalog.
    let mut long = body.clone();
    long["planCode"] = Value::from("p".repeat(64));
    let (status, answer) = app.provision(&long, "req-long").await;
    assert_eq!(status, 400);
    assert_eq!(
        answer["details"][0]["message"],
        format!("unknown plan code '{}'", "p".repeat(64))
    );

    for header in ["x-request-id", "x-correlation-id", "x-tenant-id"] {
        let response = app
            .provision_request(&body, "req-long-header")
            .header(header, "h".repeat(129))
            .send()
            .await
            .expect("the service answers");
        let (status, answer) = read(response).await;
        assert_eq!(status, 400, "{header}");
        // reqwest appends: the first two headers are now given twice, the tenant once.
        let message = answer["details"][0]["message"].as_str().unwrap_or_default();
        if header == "x-tenant-id" {
            assert_eq!(detail_fields(&answer), [header]);
            assert_eq!(message, "must be at most 128 characters");
        } else {
            assert_eq!(detail_fields(&answer), [header]);
            assert_eq!(message, "must be given once");
        }
    }
    for header in ["x-request-id", "x-correlation-id"] {
        let other = if header == "x-request-id" {
            "x-correlation-id"
        } else {
            "x-request-id"
        };
        let response = app
            .client
            .post(format!("{}/api/stigg/provision", app.address))
            .header(header, "h".repeat(129))
            .header(other, "ok")
            .json(&body)
            .send()
            .await
            .expect("the service answers");
        let (status, answer) = read(response).await;
        assert_eq!(status, 400, "{header}");
        assert_eq!(detail_fields(&answer), [header]);
        assert_eq!(
            answer["details"][0]["message"],
            "must be at most 128 characters"
        );
    }
    // Only the one provisioning above reached Stigg.
    assert_eq!(app.stigg.emulator().subscriptions().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Slow and idle clients

/// actix-web's `client_request_timeout` (5 s by default, kept) bounds how long a client may
/// take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads until the server answers or closes; `None` if it did neither within `limit`.
async fn wait_for_server(stream: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut answer = Vec::new();
    let mut buffer = [0u8; 1024];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match timeout(left, stream.read(&mut buffer)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(answer),
            Ok(Ok(n)) => answer.extend_from_slice(&buffer[..n]),
        }
    }
}

/// Twenty clients send their request head one byte per 100 ms (it would take 18 s), and one
/// sends half a head and then nothing. Meanwhile normal requests are answered at once; the
/// server cuts every slow client off once the head timeout has passed.
#[tokio::test]
async fn slow_loris_clients_are_cut_off_and_others_are_served() {
    let app = spawn_app().await;
    let head = b"POST /api/stigg/provision HTTP/1.1\r\nHost: 127.0.0.1\r\nx-request-id: slow\r\n\
                 x-correlation-id: slow\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
    let started = Instant::now();
    let mut trickling = Vec::new();
    for _ in 0..20 {
        let mut stream = connect(&app).await;
        trickling.push(tokio::spawn(async move {
            for byte in head.iter() {
                if stream.write_all(&[*byte]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                if started.elapsed() > HEAD_TIMEOUT + Duration::from_secs(4) {
                    break;
                }
            }
            started.elapsed()
        }));
    }
    let mut silent = connect(&app).await;
    silent
        .write_all(b"POST /api/stigg/provision HTTP/1.1\r\nHost: 127.0.0.1\r\nx-req")
        .await
        .expect("the partial head is written");

    // While they trickle: ten normal requests, each answered well under a second.
    let mut slowest = Duration::ZERO;
    for i in 0..10 {
        let sent = Instant::now();
        let (status, _) = timeout(
            Duration::from_secs(5),
            app.provision(&acme_body(), &format!("req-normal-{i}")),
        )
        .await
        .unwrap_or_else(|_| panic!("request {i} got no answer within 5 s"));
        assert_eq!(status, 404);
        slowest = slowest.max(sent.elapsed());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        slowest < Duration::from_secs(1),
        "slowest normal request: {slowest:?}"
    );

    // The silent client is answered 408 (or dropped) after the head timeout, not before.
    let answer = wait_for_server(&mut silent, HEAD_TIMEOUT + Duration::from_secs(3)).await;
    let cut_after = started.elapsed();
    let answer = answer.unwrap_or_else(|| panic!("still open after {cut_after:?}"));
    assert!(
        cut_after >= HEAD_TIMEOUT - Duration::from_millis(500),
        "{cut_after:?}"
    );
    if !answer.is_empty() {
        assert_eq!(RawResponse::parse(&answer).status, 408);
    }
    // The trickling ones were cut off too: their writes failed before the whole head was out.
    for task in trickling {
        let stopped = task.await.expect("the trickling task finishes");
        assert!(
            stopped < HEAD_TIMEOUT + Duration::from_secs(4),
            "a slow client was still writing after {stopped:?}"
        );
    }
    assert_eq!(app.debug_rows("slow").await.len(), 0);
    assert_still_serving(&app).await;
}

/// A thousand connections held open without a byte sent do not keep normal requests waiting;
/// closing them all leaves the service as it was.
#[tokio::test]
async fn a_thousand_idle_connections_do_not_block_requests() {
    let app = spawn_app().await;
    let opening = Instant::now();
    let mut idle = Vec::with_capacity(1000);
    for _ in 0..1000 {
        let stream = timeout(Duration::from_secs(5), TcpStream::connect(socket(&app)))
            .await
            .unwrap_or_else(|_| panic!("connect timed out after {} connections", idle.len()))
            .unwrap_or_else(|e| panic!("connect after {} connections: {e}", idle.len()));
        idle.push(stream);
    }
    // A listen backlog shorter than the burst drops SYNs, and each dropped one is retried
    // only after a second.
    assert!(
        opening.elapsed() < Duration::from_secs(1),
        "{:?}",
        opening.elapsed()
    );

    // A new client, so none of its requests can reuse a connection from before.
    let client = reqwest::Client::new();
    for i in 0..20 {
        let sent = Instant::now();
        let response = client
            .post(format!("{}/api/stigg/provision", app.address))
            .header("x-request-id", format!("req-busy-{i}"))
            .header("x-correlation-id", "c")
            .json(&acme_body())
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert_eq!(response.status(), 404);
        assert!(
            sent.elapsed() < Duration::from_secs(1),
            "request {i}: {:?}",
            sent.elapsed()
        );
    }
    drop(idle);
    assert_still_serving(&app).await;
    assert_eq!(
        app.debug_log_count_where("request_id LIKE 'req-busy-%'")
            .await,
        20
    );
}

/// A broken chunked encoding answers a plain message, not the decoder's own words.
#[tokio::test]
async fn a_broken_chunked_body_is_400_with_a_plain_message() {
    let app = spawn_app().await;
    let request = b"POST /api/stigg/provision HTTP/1.1\r\nHost: 127.0.0.1\r\n\
        Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\
        x-request-id: req-chunk\r\nx-correlation-id: c\r\n\r\nzz\r\n{}\r\n0\r\n\r\n";
    let answer = exchange(&app, request).await;
    assert_eq!(answer.status, 400, "{}", answer.head);
    assert_eq!(answer.json()["message"], "request body could not be read");
    assert_still_serving(&app).await;
}

/// A body that trickles in is cut off: the connection is not held for ever.
#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_408() {
    let app = spawn_app().await;
    let mut stream = connect(&app).await;
    stream
        .write_all(
            b"POST /api/stigg/provision HTTP/1.1\r\nHost: 127.0.0.1\r\n\
              Content-Type: application/json\r\nContent-Length: 100\r\nConnection: close\r\n\
              x-request-id: req-trickle\r\nx-correlation-id: c\r\n\r\n{",
        )
        .await
        .expect("the partial request is written");
    let started = Instant::now();
    // A byte every 2 s, never the whole body.
    let trickle = async {
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            if stream.write_all(b" ").await.is_err() {
                break;
            }
        }
    };
    let _ = timeout(Duration::from_secs(13), trickle).await;
    let mut answer = Vec::new();
    let _ = timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let answer = RawResponse::parse(&answer);
    assert_eq!(answer.status, 408, "{}", answer.head);
    assert_eq!(answer.json()["code"], "REQUEST_TIMEOUT");
    assert!(started.elapsed() < Duration::from_secs(15));
}

/// Which requests get a debug-log row: those routed to the API scope (`/api/...`, exactly as
/// written), whatever the answer; other paths, look-alikes included, get none.
#[tokio::test]
async fn api_paths_get_a_row_and_look_alikes_do_not() {
    let app = spawn_app().await;
    for (path, id) in [
        ("/api/other", "req-other"),
        ("//api/stigg/provision", "req-double"),
        ("/API/STIGG/PROVISION", "req-upper"),
    ] {
        let answer = app
            .client
            .post(format!("{}{path}", app.address))
            .header("x-request-id", id)
            .header("x-correlation-id", "c")
            .json(&serde_json::json!({}))
            .send()
            .await
            .expect("the service answers");
        assert_eq!(answer.status(), 404, "{path}");
    }
    assert_eq!(app.debug_rows("req-other").await.len(), 1);
    assert!(app.debug_rows("req-double").await.is_empty());
    assert!(app.debug_rows("req-upper").await.is_empty());
}

/// A long path is neither stored whole nor echoed whole.
#[tokio::test]
async fn long_paths_are_cut_in_the_row_and_in_the_answer() {
    let app = spawn_app().await;
    let path = format!("/api/{}", "x".repeat(60_000));
    let answer = app
        .client
        .post(format!("{}{path}", app.address))
        .header("x-request-id", "req-long-path")
        .header("x-correlation-id", "c")
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("the service answers");
    assert_eq!(answer.status(), 404);
    let body: Value = answer.json().await.expect("the answer is JSON");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.len() < 300, "{} bytes", message.len());
    let rows = app.debug_rows("req-long-path").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].path.len(), 1024);
}

/// A client that pipelines requests without reading the answers is served 1,000 answers at
/// full speed, the last saying `Connection: close`; past that one per 5 s, so that what waits
/// for it stays bounded.
#[tokio::test]
async fn a_pipelining_connection_is_slowed_after_a_thousand_requests() {
    let app = spawn_app().await;
    let mut stream = connect(&app).await;
    let requests = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".repeat(3_000);
    let (mut reader, mut writer) = stream.split();
    let write = async {
        let _ = timeout(
            Duration::from_secs(3),
            writer.write_all(requests.as_bytes()),
        )
        .await;
    };
    let mut answers = Vec::new();
    let read = async {
        let mut chunk = [0_u8; 65_536];
        let until = Instant::now() + Duration::from_secs(3);
        while let Ok(Ok(n)) = timeout(
            until.saturating_duration_since(Instant::now()),
            reader.read(&mut chunk),
        )
        .await
        {
            if n == 0 {
                break;
            }
            answers.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::join!(write, read);
    let text = String::from_utf8_lossy(&answers);
    let served = text.matches("HTTP/1.1 200 OK").count();
    assert_eq!(
        served, 1_000,
        "{served} answers within 3 s on one connection"
    );
    assert_eq!(text.matches("connection: close").count(), 1);
    assert_still_serving(&app).await;
}
