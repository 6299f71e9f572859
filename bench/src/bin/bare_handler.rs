//! `bare-handler`: the limit of scenario (a). One actix-web route, `POST /api/stigg/provision`,
//! that reads the body and answers a fixed 400 JSON body, with nothing else: no middleware,
//! no parsing, no database, no logging.
//!
//! It is served the way the service serves (`crates/app-actix/src/startup/server.rs`): the same
//! actix-web version (the workspace's), `HttpServer` with its default worker count inside a
//! `#[tokio::main]` runtime, on an already bound listener. The benchmark passes the service's
//! own 400 body, so both answer the same bytes.
//!
//! ```text
//! bare-handler --bind 127.0.0.1:8090 --body-file answer.json
//! ```

use std::net::TcpListener;

use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use actix_web::web::{self, Bytes};
use actix_web::{App, HttpResponse, HttpServer};
use anyhow::{Context, bail};

/// Used when no `--body-file` is given: the shape of the service's 400.
const DEFAULT_BODY: &str = r#"{"code":"BAD_REQUEST","message":"request body is invalid","details":[{"field":"planCode","message":"unknown plan code 'plan_unknown'"}],"requestId":"bench-req","correlationId":"bench-corr"}"#;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut bind = "127.0.0.1:8090".to_owned();
    let mut body = DEFAULT_BODY.to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bind" => bind = args.next().context("--bind needs an address")?,
            "--body-file" => {
                let path = args.next().context("--body-file needs a path")?;
                body = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {path}"))?;
            }
            other => bail!("unknown argument {other} (use --bind ADDR, --body-file PATH)"),
        }
    }
    let body = Bytes::from(body);
    let listener = TcpListener::bind(&bind).with_context(|| format!("cannot listen on {bind}"))?;
    HttpServer::new(move || {
        let body = body.clone();
        App::new().route(
            "/api/stigg/provision",
            web::post().to(move |_request: Bytes| {
                let body = body.clone();
                async move {
                    HttpResponse::build(StatusCode::BAD_REQUEST)
                        .content_type(ContentType::json())
                        .body(body)
                }
            }),
        )
    })
    .listen(listener)?
    .shutdown_timeout(10)
    .run()
    .await?;
    Ok(())
}
