//! Admin routes under `/_emulator` for tests and humans: no key, JSON bodies in camelCase,
//! errors in Stripe's shape. A change answers `{"object": …, "events": [...]}`: the object as it
//! now is and the events it recorded.

use actix_web::web::{self, Bytes, Path};
use actix_web::{HttpResponse, Responder};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::changes::{AdminError, Change, NewCustomer, NewSubscription, SubscriptionChange};
use crate::config::WebhookEndpoint;
use crate::emulator::Emulator;
use crate::faults::{ApiFault, DeliveryFault};
use crate::reply::Reply;

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/_emulator")
            .route("/health", web::get().to(health))
            .route("/customers", web::post().to(create_customer))
            .route("/customers/{id}", web::delete().to(delete_customer))
            .route("/subscriptions", web::post().to(create_subscription))
            .route("/subscriptions/{id}", web::delete().to(delete_subscription))
            .route(
                "/subscriptions/{id}/{change}",
                web::post().to(change_subscription),
            )
            .route("/events", web::get().to(events))
            .route("/deliveries", web::get().to(deliveries))
            .route("/requests", web::get().to(requests))
            .route("/webhook", web::get().to(webhook))
            .route("/webhook", web::put().to(set_webhook))
            .route("/webhook", web::delete().to(remove_webhook))
            .route("/faults", web::get().to(faults))
            .route("/faults", web::delete().to(clear_faults))
            .route("/faults/api", web::post().to(push_api_fault))
            .route("/faults/delivery", web::post().to(push_delivery_fault))
            .route("/reset", web::post().to(reset)),
    );
}

async fn health() -> impl Responder {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Body: a [`NewCustomer`] (`{}` is enough).
async fn create_customer(emulator: web::Data<Emulator>, body: Bytes) -> HttpResponse {
    match parse::<NewCustomer>(&body) {
        Ok(new) => created(emulator.create_customer(new)),
        Err(reply) => reply.to_response(),
    }
}

async fn delete_customer(emulator: web::Data<Emulator>, id: Path<String>) -> HttpResponse {
    changed(emulator.delete_customer(&id))
}

/// Body: a [`NewSubscription`].
async fn create_subscription(emulator: web::Data<Emulator>, body: Bytes) -> HttpResponse {
    match parse::<NewSubscription>(&body) {
        Ok(new) => created(emulator.create_subscription(new)),
        Err(reply) => reply.to_response(),
    }
}

async fn delete_subscription(emulator: web::Data<Emulator>, id: Path<String>) -> HttpResponse {
    changed(emulator.delete_subscription(&id))
}

/// `POST /_emulator/subscriptions/{id}/{change}`: the change's name in the path (`status`,
/// `trial-end`, `cancel-at-period-end`, `cancel-at`, `cancel`, `price`, `pause`, `resume`),
/// its fields in the body (none for `cancel`, `pause` and `resume`).
async fn change_subscription(
    emulator: web::Data<Emulator>,
    path: Path<(String, String)>,
    body: Bytes,
) -> HttpResponse {
    let (id, name) = path.into_inner();
    let fields = if body.iter().all(u8::is_ascii_whitespace) {
        Ok(Value::Object(Default::default()))
    } else {
        parse::<Value>(&body)
    };
    let change = fields.and_then(|fields| match fields {
        Value::Object(mut fields) => {
            fields.insert("change".into(), Value::String(name));
            SubscriptionChange::deserialize(Value::Object(fields))
                .map_err(|error| Reply::invalid(error.to_string(), None))
        }
        _ => Err(Reply::invalid("the body must be a JSON object", None)),
    });
    match change {
        Ok(change) => changed(emulator.change_subscription(&id, change)),
        Err(reply) => reply.to_response(),
    }
}

async fn events(emulator: web::Data<Emulator>) -> impl Responder {
    HttpResponse::Ok().json(emulator.events())
}

async fn deliveries(emulator: web::Data<Emulator>) -> impl Responder {
    HttpResponse::Ok().json(emulator.deliveries())
}

async fn requests(emulator: web::Data<Emulator>) -> impl Responder {
    HttpResponse::Ok().json(emulator.requests())
}

async fn webhook(emulator: web::Data<Emulator>) -> HttpResponse {
    webhook_answer(&emulator)
}

/// The endpoint's URL and how many secrets sign for it (never the secrets).
fn webhook_answer(emulator: &Emulator) -> HttpResponse {
    let state = emulator.lock();
    let endpoint = state.webhook.as_ref();
    HttpResponse::Ok().json(json!({
        "url": endpoint.map(|endpoint| endpoint.url.clone()),
        "secrets": endpoint.map_or(0, |endpoint| endpoint.secrets.len()),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointBody {
    url: String,
    /// One `whsec_…` secret or a comma-separated list.
    secret: String,
}

/// Body: `{"url": "http://…", "secret": "whsec_…"}`.
async fn set_webhook(emulator: web::Data<Emulator>, body: Bytes) -> HttpResponse {
    let endpoint = parse::<EndpointBody>(&body).and_then(|body| {
        WebhookEndpoint::new(&body.url, &body.secret)
            .map_err(|problem| Reply::invalid(problem, None))
    });
    match endpoint {
        Ok(endpoint) => {
            emulator.set_webhook(Some(endpoint));
            webhook_answer(&emulator)
        }
        Err(reply) => reply.to_response(),
    }
}

async fn remove_webhook(emulator: web::Data<Emulator>) -> HttpResponse {
    emulator.set_webhook(None);
    webhook_answer(&emulator)
}

async fn faults(emulator: web::Data<Emulator>) -> HttpResponse {
    faults_answer(&emulator)
}

fn faults_answer(emulator: &Emulator) -> HttpResponse {
    let (api, delivery) = emulator.pending_faults();
    HttpResponse::Ok().json(json!({ "api": api, "delivery": delivery }))
}

async fn clear_faults(emulator: web::Data<Emulator>) -> HttpResponse {
    emulator.clear_faults();
    faults_answer(&emulator)
}

/// Body: an [`ApiFault`]. Answers the faults now queued.
async fn push_api_fault(emulator: web::Data<Emulator>, body: Bytes) -> HttpResponse {
    let fault = parse::<ApiFault>(&body).and_then(|fault| match fault.problem() {
        Some(problem) => Err(Reply::invalid(problem, None)),
        None => Ok(fault),
    });
    match fault {
        Ok(fault) => {
            emulator.push_api_fault(fault);
            faults_answer(&emulator)
        }
        Err(reply) => reply.to_response(),
    }
}

/// Body: a [`DeliveryFault`]. Answers the faults now queued.
async fn push_delivery_fault(emulator: web::Data<Emulator>, body: Bytes) -> HttpResponse {
    match parse::<DeliveryFault>(&body) {
        Ok(fault) => {
            emulator.push_delivery_fault(fault);
            faults_answer(&emulator)
        }
        Err(reply) => reply.to_response(),
    }
}

async fn reset(emulator: web::Data<Emulator>) -> impl Responder {
    emulator.reset();
    HttpResponse::Ok().json(json!({ "reset": true }))
}

fn created(result: Result<Change, AdminError>) -> HttpResponse {
    match result {
        Ok(change) => HttpResponse::Created().json(change),
        Err(error) => error.to_reply().to_response(),
    }
}

fn changed(result: Result<Change, AdminError>) -> HttpResponse {
    match result {
        Ok(change) => HttpResponse::Ok().json(change),
        Err(error) => error.to_reply().to_response(),
    }
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Reply> {
    serde_json::from_slice(body)
        .map_err(|error| Reply::invalid(format!("Invalid JSON body: {error}"), None))
}
