//! The Stigg REST v1 routes. Every request takes the same path: logged, then a scripted fault if
//! one matches, then the API key, the JSON body, the idempotency cache, the rate limit, and
//! finally the operation.

use std::time::{Duration, Instant};

use actix_web::http::header::{CONTENT_TYPE, HeaderMap, USER_AGENT};
use actix_web::web::{self, Bytes};
use actix_web::{Handler, HttpRequest, HttpResponse};
use chrono::Utc;
use serde_json::{Map, Value};

use crate::emulator::{Emulator, LoggedRequest, State};
use crate::faults::{self, FaultAction, ResetBody, TruncatedBody};
use crate::reply::Reply;
use crate::{lifecycle, provisioning};

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1")
            .route(
                "/customers",
                web::post().to(handler(Operation::Mutate(Mutation::CreateCustomer))),
            )
            .route(
                "/customers/{id}",
                web::get().to(handler(Operation::GetCustomer)),
            )
            .route(
                "/customers/{id}/archive",
                web::post().to(handler(Operation::Mutate(Mutation::ArchiveCustomer))),
            )
            .route(
                "/subscriptions",
                web::post().to(handler(Operation::Mutate(Mutation::CreateSubscription))),
            )
            .service(
                web::resource("/subscriptions/{id}")
                    .route(web::get().to(handler(Operation::GetSubscription)))
                    .route(
                        web::patch().to(handler(Operation::Mutate(Mutation::PatchSubscription))),
                    ),
            )
            .route(
                "/subscriptions/{id}/cancel",
                web::post().to(handler(Operation::Mutate(Mutation::CancelSubscription))),
            )
            // Unknown routes are still logged, faulted and authenticated like real ones.
            .default_service(web::to(handler(Operation::Unknown))),
    );
}

/// Every route takes the same path through [`serve`]; only the operation differs.
fn handler(
    operation: Operation,
) -> impl Handler<(web::Data<Emulator>, HttpRequest, Bytes), Output = HttpResponse> {
    move |emulator: web::Data<Emulator>, request: HttpRequest, body: Bytes| async move {
        serve(&emulator, &request, &body, operation).await
    }
}

#[derive(Clone, Copy)]
enum Operation {
    Mutate(Mutation),
    GetCustomer,
    GetSubscription,
    Unknown,
}

#[derive(Clone, Copy)]
enum Mutation {
    CreateCustomer,
    CreateSubscription,
    PatchSubscription,
    CancelSubscription,
    ArchiveCustomer,
}

impl Mutation {
    /// Name of the operation's rate-limit window: Stigg's name for the mutation.
    fn name(self) -> &'static str {
        match self {
            Self::CreateCustomer => "provisionCustomer",
            Self::CreateSubscription => "provisionSubscription",
            Self::PatchSubscription => "updateSubscription",
            Self::CancelSubscription => "cancelSubscription",
            Self::ArchiveCustomer => "archiveCustomer",
        }
    }

    /// The entity whose rate-limit window the call counts against, as Stigg keys them: the
    /// customer for customer routes and subscription creates, the subscription for the
    /// calls on one. `id` is the route's `{id}`.
    fn entity(self, id: &str, fields: &Map<String, Value>) -> Option<String> {
        let customer_in = |field: &str| {
            fields
                .get(field)
                .and_then(Value::as_str)
                .map(|customer| format!("customer:{customer}"))
        };
        match self {
            Self::CreateCustomer => customer_in("id"),
            Self::CreateSubscription => customer_in("customerId"),
            Self::PatchSubscription | Self::CancelSubscription => {
                Some(format!("subscription:{id}"))
            }
            Self::ArchiveCustomer => Some(format!("customer:{id}")),
        }
    }

    /// Archiving takes no fields, so its body (if any) is not read.
    fn reads_body(self) -> bool {
        !matches!(self, Self::ArchiveCustomer)
    }
}

/// What the emulator needs from the request's head.
struct Head {
    method: String,
    path: String,
    /// The route's `{id}`; empty on routes without one.
    id: String,
    idempotency_key: Option<String>,
    api_key_valid: bool,
    is_json: bool,
}

async fn serve(
    emulator: &Emulator,
    request: &HttpRequest,
    body: &Bytes,
    operation: Operation,
) -> HttpResponse {
    let headers = request.headers();
    let head = Head {
        method: request.method().as_str().to_owned(),
        path: request.path().to_owned(),
        id: request
            .match_info()
            .get("id")
            .unwrap_or_default()
            .to_owned(),
        idempotency_key: header(headers, "idempotency-key").filter(|key| !key.is_empty()),
        api_key_valid: header(headers, "x-api-key").is_some_and(|key| key == emulator.api_key()),
        is_json: header(headers, CONTENT_TYPE.as_str()).is_some_and(|value| {
            let mime = value.split(';').next().unwrap_or_default();
            mime.trim().eq_ignore_ascii_case("application/json")
        }),
    };
    let logged = LoggedRequest {
        method: head.method.clone(),
        path: head.path.clone(),
        idempotency_key: head.idempotency_key.clone(),
        correlation_id: header(headers, "x-correlation-id"),
        api_key_valid: head.api_key_valid,
        user_agent: header(headers, USER_AGENT.as_str()),
        body: logged_body(body),
        status: 0,
        at: Utc::now(),
    };
    let (log_number, fault) = {
        let mut state = emulator.lock();
        let log_number = state.log_request(logged);
        let fault = faults::take_matching(&mut state.faults, &head.method, &head.path);
        (log_number, fault)
    };

    let (status, response) = match fault {
        Some(FaultAction::Truncate) => (
            200,
            HttpResponse::Ok()
                .content_type("application/json")
                .body(TruncatedBody::new()),
        ),
        Some(FaultAction::Reset) => (0, HttpResponse::Ok().body(ResetBody)),
        Some(FaultAction::Status {
            status,
            body,
            retry_after,
            retry_after_ms,
        }) => {
            let mut reply = Reply::raw(
                status,
                body.unwrap_or_else(|| {
                    serde_json::json!({
                        "code": "InjectedFault",
                        "message": format!("Injected fault: HTTP {status}"),
                    })
                }),
            );
            if let Some(value) = retry_after {
                reply = reply.with_header("retry-after", value);
            }
            if let Some(ms) = retry_after_ms {
                reply = reply.with_header("retry-after-ms", ms.to_string());
            }
            (reply.status, reply.to_response())
        }
        Some(FaultAction::Delay { ms }) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            let reply = answer(emulator, &head, body, operation);
            (reply.status, reply.to_response())
        }
        None => {
            let reply = answer(emulator, &head, body, operation);
            (reply.status, reply.to_response())
        }
    };
    emulator.lock().set_logged_status(log_number, status);
    tracing::debug!(method = %head.method, path = %head.path, status, "stigg emulator request");
    response
}

/// The emulator's real answer, once faults are out of the way.
fn answer(emulator: &Emulator, head: &Head, body: &[u8], operation: Operation) -> Reply {
    if !head.api_key_valid {
        return Reply::unauthenticated();
    }
    let mutation = match operation {
        Operation::Mutate(mutation) => mutation,
        Operation::GetCustomer => {
            return provisioning::get_customer(&emulator.lock().store, &head.id);
        }
        Operation::GetSubscription => {
            return provisioning::get_subscription(&emulator.lock().store, &head.id);
        }
        Operation::Unknown => {
            return Reply::error(
                404,
                "NotFound",
                format!("Cannot {} {}", head.method, head.path),
            );
        }
    };
    let fields = if mutation.reads_body() {
        match json_object(head, body) {
            Ok(fields) => fields,
            Err(reply) => return reply,
        }
    } else {
        Map::new()
    };
    let entity = mutation.entity(&head.id, &fields);

    // Held from the idempotency check to the insert, so that concurrent requests with one key
    // (or one entity id) cannot both create.
    let mut guard = emulator.lock();
    let state: &mut State = &mut guard;
    if let Some(key) = &head.idempotency_key
        && let Some(stored) = state.idempotency.get(key)
    {
        // Same key, any body: the first answer is replayed (Stigg documents only "returns the
        // cached response"), and a replay does not count against rate limits.
        return stored
            .clone()
            .with_header("idempotent-replayed", "true".to_owned());
    }
    if let Some(limit) = &state.rate_limit
        && let Err(wait) =
            state
                .limiter
                .admit(limit, mutation.name(), entity.as_deref(), Instant::now())
    {
        let reply = Reply::error(429, "RateLimitExceeded", "Too many requests");
        return match limit.retry_after.header(wait) {
            Some((name, value)) => reply.with_header(name, value),
            None => reply,
        };
    }
    let now = Utc::now();
    let store = &mut state.store;
    let reply = match mutation {
        Mutation::CreateCustomer => provisioning::create_customer(store, &fields, now),
        Mutation::CreateSubscription => {
            provisioning::create_subscription(store, emulator.plans(), &fields, now)
        }
        Mutation::PatchSubscription => lifecycle::patch_subscription(store, &head.id, &fields),
        Mutation::CancelSubscription => {
            lifecycle::cancel_subscription(store, &head.id, &fields, now)
        }
        Mutation::ArchiveCustomer => lifecycle::archive_customer(store, &head.id, now),
    };
    if let Some(key) = &head.idempotency_key
        && reply.is_replayable()
    {
        state.idempotency.insert(key.clone(), reply.clone());
    }
    reply
}

/// The body of a mutation, which must be a JSON object sent as `application/json`. These
/// refusals are not cached under the idempotency key: the request never reached Stigg's logic.
fn json_object(head: &Head, body: &[u8]) -> Result<Map<String, Value>, Reply> {
    if !head.is_json {
        return Err(Reply::bad_input("Content-Type must be application/json"));
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(Reply::bad_input("Request body must be a JSON object")),
        Err(error) => Err(Reply::bad_input(format!(
            "Request body is not valid JSON: {error}"
        ))),
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// The body as JSON when it is JSON, else as a string, so that the log shows what was sent.
fn logged_body(body: &[u8]) -> Option<Value> {
    if body.is_empty() {
        return None;
    }
    Some(
        serde_json::from_slice(body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned())),
    )
}
