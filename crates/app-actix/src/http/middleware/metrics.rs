//! Request metrics for every route: one count and one latency observation per answered
//! request, labelled with the matched route pattern (never the raw path, which would let
//! callers create series at will).

use std::time::Instant;

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web::Data;

use crate::http::middleware::connection;
use crate::metrics::{Metrics, UNMATCHED_ROUTE};

/// The middleware function (see [`actix_web::middleware::from_fn`]). Mounted once, outermost,
/// so the latency covers the API middleware (debug-log row included) and nothing is counted
/// twice.
pub async fn record_request_metrics(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    // The connection's request count rides along here rather than in a layer of its own. Its
    // pause (a pipelining connection past its limit) is the connection's, not the request's
    // latency, so the clock starts after it.
    let last_on_connection = connection::count(&req).await;
    let started = Instant::now();
    let metrics = req.app_data::<Data<Metrics>>().cloned();
    let method = req.method().clone();
    let mut result = next.call(req).await;
    if last_on_connection && let Ok(response) = &mut result {
        connection::close(response);
    }
    let Some(metrics) = metrics else {
        return result;
    };
    match &result {
        Ok(response) => {
            let route = response.request().match_pattern();
            metrics.observe_request(
                &method,
                route.as_deref().unwrap_or(UNMATCHED_ROUTE),
                response.status(),
                started.elapsed(),
            );
        }
        // The request went away with the error, so its route is not known any more. The
        // routes and middleware of this service answer errors as responses, so this is a
        // safety net that still counts the request.
        Err(error) => metrics.observe_request(
            &method,
            UNMATCHED_ROUTE,
            error.as_response_error().status_code(),
            started.elapsed(),
        ),
    }
    result
}
