//! Admin routes under `/_emulator` for tests and humans. No API key; JSON in camelCase.

use actix_web::web::{self, Bytes};
use actix_web::{HttpResponse, Responder};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::emulator::{Emulator, EntityKind};
use crate::faults::Fault;
use crate::rate_limit::RateLimit;
use crate::reply::Reply;

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/_emulator")
            .route("/health", web::get().to(health))
            .route("/requests", web::get().to(requests))
            .route("/faults", web::get().to(faults))
            .route("/faults", web::post().to(push_fault))
            .route("/faults", web::delete().to(clear_faults))
            .route("/rate-limit", web::put().to(set_rate_limit))
            .route("/reset", web::post().to(reset))
            .route("/state", web::get().to(state)),
    );
}

async fn health() -> impl Responder {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

async fn requests(emulator: web::Data<Emulator>) -> impl Responder {
    HttpResponse::Ok().json(emulator.requests())
}

async fn faults(emulator: web::Data<Emulator>) -> impl Responder {
    HttpResponse::Ok().json(emulator.pending_faults())
}

/// Body: a [`Fault`]. Answers the faults now queued.
async fn push_fault(emulator: web::Data<Emulator>, body: Bytes) -> HttpResponse {
    let fault: Fault = match parse(&body) {
        Ok(fault) => fault,
        Err(reply) => return reply.to_response(),
    };
    if let Some(problem) = fault.problem() {
        return Reply::bad_input(problem).to_response();
    }
    emulator.push_fault(fault);
    HttpResponse::Created().json(emulator.pending_faults())
}

async fn clear_faults(emulator: web::Data<Emulator>) -> impl Responder {
    emulator.clear_faults();
    HttpResponse::Ok().json(emulator.pending_faults())
}

/// Body: a [`RateLimit`], or `null` to turn rate limiting off.
async fn set_rate_limit(emulator: web::Data<Emulator>, body: Bytes) -> HttpResponse {
    let limit: Option<RateLimit> = match parse(&body) {
        Ok(limit) => limit,
        Err(reply) => return reply.to_response(),
    };
    emulator.set_rate_limit(limit);
    HttpResponse::Ok().json(json!({ "rateLimit": emulator.rate_limit() }))
}

async fn reset(emulator: web::Data<Emulator>) -> impl Responder {
    emulator.reset();
    HttpResponse::Ok().json(json!({ "reset": true }))
}

async fn state(emulator: web::Data<Emulator>) -> impl Responder {
    HttpResponse::Ok().json(json!({
        "customers": emulator.customers(),
        "subscriptions": emulator.subscriptions(),
        "createdCounts": {
            "customers": emulator.created_count(EntityKind::Customer),
            "subscriptions": emulator.created_count(EntityKind::Subscription),
        },
        "pendingFaults": emulator.pending_faults(),
        "rateLimit": emulator.rate_limit(),
    }))
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Reply> {
    serde_json::from_slice(body)
        .map_err(|error| Reply::bad_input(format!("Invalid JSON body: {error}")))
}
