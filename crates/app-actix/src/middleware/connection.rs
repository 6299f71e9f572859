//! A bound on the requests one connection may make, so that memory per connection is bounded.
//!
//! actix-web answers pipelined requests as it reads them and keeps every answer the client has
//! not read yet: a client that pipelines requests without reading the answers made the server
//! hold tens of MB per connection. The answer to request [`MAX_REQUESTS_PER_CONNECTION`] says
//! `Connection: close`; well-behaved clients open a new connection, as they do behind proxies
//! that set the same kind of limit. actix closes only once the answers are written, so a
//! client that keeps pipelining is served on, but slowly: each further request waits
//! [`LATE_REQUEST_PAUSE`] first. While it waits actix reads no more requests from the
//! connection (it queues at most 16, and 128 KiB of bytes), so what waits for the client stays
//! bounded.

use std::cell::Cell;

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::ConnectionType;
use actix_web::middleware::Next;

/// Requests one connection may make (1,000, as nginx's `keepalive_requests`).
pub const MAX_REQUESTS_PER_CONNECTION: u32 = 1_000;

/// The wait before each request past the limit.
pub const LATE_REQUEST_PAUSE: std::time::Duration = std::time::Duration::from_secs(5);

/// The requests made so far on one connection; set up by [`on_connect`].
pub struct RequestCount(Cell<u32>);

/// Gives every new connection its counter (`HttpServer::on_connect`).
pub fn on_connect(_: &dyn std::any::Any, data: &mut actix_web::dev::Extensions) {
    data.insert(RequestCount(Cell::new(0)));
}

/// The middleware function (see [`actix_web::middleware::from_fn`]).
pub async fn close_after_many_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let made = req.conn_data::<RequestCount>().map_or(0, |count| {
        let made = count.0.get().saturating_add(1);
        count.0.set(made);
        made
    });
    let last = made >= MAX_REQUESTS_PER_CONNECTION;
    if made > MAX_REQUESTS_PER_CONNECTION {
        tokio::time::sleep(LATE_REQUEST_PAUSE).await;
    }
    let mut response = next.call(req).await?;
    if last {
        response
            .response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    Ok(response)
}
