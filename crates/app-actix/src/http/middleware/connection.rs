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

use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::ConnectionType;

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

/// Counts `req` on its connection and, past the limit, waits first. True when its answer
/// must close the connection (see [`close`]). Called by the outermost middleware
/// ([`record_request_metrics`](super::metrics::record_request_metrics)), so that this costs
/// no middleware layer of its own.
pub async fn count(req: &ServiceRequest) -> bool {
    let made = req.conn_data::<RequestCount>().map_or(0, |count| {
        let made = count.0.get().saturating_add(1);
        count.0.set(made);
        made
    });
    if made > MAX_REQUESTS_PER_CONNECTION {
        tokio::time::sleep(LATE_REQUEST_PAUSE).await;
    }
    made >= MAX_REQUESTS_PER_CONNECTION
}

/// Marks the answer `Connection: close`.
pub fn close<B>(response: &mut ServiceResponse<B>) {
    response
        .response_mut()
        .head_mut()
        .set_connection_type(ConnectionType::Close);
}
