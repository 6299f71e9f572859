//! The Stripe API reads. Every request takes the same path: a scripted fault if one matches,
//! then the key, the `Stripe-Version`, the parameters and the read; every answer carries
//! `Request-Id` and `Stripe-Version`, and is logged.

use std::time::Duration;

use actix_web::http::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use actix_web::web::{self, Query};
use actix_web::{Handler, HttpRequest, HttpResponse};
use chrono::{NaiveDate, Utc};
use serde_json::{Value, json};

use crate::emulator::{ApiRequest, Emulator};
use crate::faults::ApiFaultAction;
use crate::objects::SubscriptionStatus;
use crate::reply::Reply;
use crate::store::{PageQuery, new_id};

const REQUEST_ID: HeaderName = HeaderName::from_static("request-id");
const STRIPE_VERSION: HeaderName = HeaderName::from_static("stripe-version");

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v1")
            .route(
                "/subscriptions",
                web::get().to(handler(Read::Subscriptions)),
            )
            .route(
                "/subscriptions/{id}",
                web::get().to(handler(Read::Subscription)),
            )
            .route("/customers/{id}", web::get().to(handler(Read::Customer)))
            .route("/events", web::get().to(handler(Read::Events)))
            .route("/events/{id}", web::get().to(handler(Read::Event)))
            // Anything else is still faulted, authenticated and logged like a real route.
            .default_service(web::to(handler(Read::Unknown))),
    );
}

#[derive(Clone, Copy)]
enum Read {
    Subscriptions,
    Subscription,
    Customer,
    Events,
    Event,
    Unknown,
}

fn handler(read: Read) -> impl Handler<(web::Data<Emulator>, HttpRequest), Output = HttpResponse> {
    move |emulator: web::Data<Emulator>, request: HttpRequest| async move {
        serve(&emulator, &request, read).await
    }
}

async fn serve(emulator: &Emulator, request: &HttpRequest, read: Read) -> HttpResponse {
    let headers = request.headers();
    let method = request.method().as_str().to_owned();
    let path = request.path().to_owned();
    let presented = bearer_key(headers);
    let api_key_valid = presented.as_deref() == Some(emulator.api_key());
    let asked_version = header(headers, "stripe-version");
    let fault = emulator.lock().faults.take_api(&method, &path);
    let reply = match fault {
        Some(ApiFaultAction::Status { status, body }) => match body {
            Some(body) => Reply { status, body },
            None => Reply::injected(status),
        },
        Some(ApiFaultAction::Delay { ms }) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            answer(
                emulator,
                request,
                read,
                presented.as_deref(),
                asked_version.as_deref(),
            )
        }
        None => answer(
            emulator,
            request,
            read,
            presented.as_deref(),
            asked_version.as_deref(),
        ),
    };
    let request_id = new_id("req");
    let version = asked_version
        .clone()
        .filter(|version| is_version(version))
        .unwrap_or_else(|| emulator.api_version().to_owned());
    emulator.lock().requests.push(ApiRequest {
        request_id: request_id.clone(),
        method,
        path,
        query: request.query_string().to_owned(),
        api_key_valid,
        stripe_version: asked_version,
        status: reply.status,
        at: Utc::now(),
    });
    let mut response = reply.to_response();
    for (name, value) in [(REQUEST_ID, request_id), (STRIPE_VERSION, version)] {
        // Both are ids and dates made or checked here, always valid header text.
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// The emulator's real answer, once faults are out of the way.
fn answer(
    emulator: &Emulator,
    request: &HttpRequest,
    read: Read,
    presented: Option<&str>,
    asked_version: Option<&str>,
) -> Reply {
    if presented != Some(emulator.api_key()) {
        return Reply::unauthorized(presented);
    }
    if let Some(version) = asked_version.filter(|version| !is_version(version)) {
        return Reply::invalid(format!("Invalid Stripe API version: {version}"), None);
    }
    let version = asked_version.unwrap_or(emulator.api_version());
    let params = match Params::parse(request.query_string()) {
        Ok(params) => params,
        Err(reply) => return reply,
    };
    let id = request.match_info().get("id").unwrap_or_default();
    let state = emulator.lock();
    match read {
        Read::Subscription => params.only(&[]).and_then(|()| {
            let subscription = state.store.subscriptions.get(id);
            let subscription =
                subscription.ok_or_else(|| Reply::resource_missing("subscription", id, "id"))?;
            Ok(Reply::ok(subscription.to_json(version)))
        }),
        Read::Customer => params.only(&[]).and_then(|()| {
            let customer = state.store.customers.get(id);
            let customer = customer.ok_or_else(|| Reply::resource_missing("customer", id, "id"))?;
            Ok(Reply::ok(customer.to_json()))
        }),
        Read::Event => params.only(&[]).and_then(|()| {
            let event = state
                .events
                .get(id)
                .ok_or_else(|| Reply::resource_missing("event", id, "id"))?;
            Ok(Reply::ok(event.json.clone()))
        }),
        Read::Subscriptions => params.only(&["status", "customer"]).and_then(|()| {
            let status = params.status_filter()?;
            let customer = params.get("customer");
            let query = params.page_query()?;
            let (page, has_more) = state
                .store
                .subscriptions
                .page("subscription", &query, |s| {
                    status.admits(s.status) && customer.is_none_or(|c| c == s.customer)
                })?;
            let data = page.iter().map(|s| s.to_json(version)).collect();
            Ok(list("/v1/subscriptions", data, has_more))
        }),
        Read::Events => params.only(&["type", "delivery_success"]).and_then(|()| {
            let kind = params.get("type");
            let delivered = params.boolean("delivery_success")?;
            let query = params.page_query()?;
            let (page, has_more) = state.events.page("event", &query, |event| {
                kind.is_none_or(|kind| type_matches(kind, event.kind))
                    && delivered.is_none_or(|delivered| delivered == event.delivered)
            })?;
            let data = page.iter().map(|event| event.json.clone()).collect();
            Ok(list("/v1/events", data, has_more))
        }),
        Read::Unknown => Err(Reply::error(
            404,
            "invalid_request_error",
            None,
            format!(
                "Unrecognized request URL ({}: {}). The Stripe emulator serves reads only; \
                 change objects through /_emulator.",
                request.method(),
                request.path()
            ),
            None,
        )),
    }
    .unwrap_or_else(|reply| reply)
}

fn list(url: &str, data: Vec<Value>, has_more: bool) -> Reply {
    Reply::ok(json!({"object": "list", "url": url, "has_more": has_more, "data": data}))
}

/// `customer.subscription.*` matches every subscription event, as Stripe's `type` filter does.
fn type_matches(filter: &str, kind: &str) -> bool {
    match filter.strip_suffix('*') {
        Some(prefix) => kind.starts_with(prefix),
        None => filter == kind,
    }
}

/// Which statuses a subscription list shows.
enum StatusFilter {
    /// No `status`: every subscription that has not ended, as Stripe lists by default.
    NotEnded,
    All,
    Ended,
    Only(SubscriptionStatus),
}

impl StatusFilter {
    fn admits(&self, status: SubscriptionStatus) -> bool {
        match self {
            Self::NotEnded => !status.is_terminal(),
            Self::All => true,
            Self::Ended => status.is_terminal(),
            Self::Only(wanted) => *wanted == status,
        }
    }
}

/// The query string's parameters.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: &str) -> Result<Self, Reply> {
        Query::<Vec<(String, String)>>::from_query(query)
            .map(|parsed| Self(parsed.into_inner()))
            .map_err(|error| Reply::invalid(format!("Invalid query string: {error}"), None))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Refuses a parameter the route does not take, as Stripe does; pagination and `expand`
    /// are taken everywhere (`expand` is ignored: the emulator has nothing to expand).
    fn only(&self, allowed: &[&str]) -> Result<(), Reply> {
        const PAGING: [&str; 3] = ["limit", "starting_after", "ending_before"];
        match self.0.iter().find(|(key, _)| {
            !allowed.contains(&key.as_str())
                && !PAGING.contains(&key.as_str())
                && !key.starts_with("expand")
        }) {
            Some((key, _)) => Err(Reply::invalid(
                format!("Received unknown parameter: {key}"),
                Some(key),
            )),
            None => Ok(()),
        }
    }

    fn page_query(&self) -> Result<PageQuery, Reply> {
        let limit = match self.get("limit") {
            None => 10,
            Some(text) => match text.parse::<usize>() {
                Ok(0) => {
                    return Err(Reply::invalid(
                        "This value must be greater than or equal to 1.",
                        Some("limit"),
                    ));
                }
                Ok(limit @ 1..=100) => limit,
                Ok(_) => {
                    return Err(Reply::invalid(
                        "This value must be less than or equal to 100.",
                        Some("limit"),
                    ));
                }
                Err(_) => {
                    return Err(Reply::invalid(
                        format!("Invalid integer: {text}"),
                        Some("limit"),
                    ));
                }
            },
        };
        let starting_after = self.get("starting_after").map(str::to_owned);
        let ending_before = self.get("ending_before").map(str::to_owned);
        if starting_after.is_some() && ending_before.is_some() {
            return Err(Reply::invalid(
                "You may only specify one of these parameters: ending_before, starting_after.",
                None,
            ));
        }
        Ok(PageQuery {
            limit,
            starting_after,
            ending_before,
        })
    }

    fn status_filter(&self) -> Result<StatusFilter, Reply> {
        Ok(match self.get("status") {
            None => StatusFilter::NotEnded,
            Some("all") => StatusFilter::All,
            Some("ended") => StatusFilter::Ended,
            Some(name) => StatusFilter::Only(
                SubscriptionStatus::parse(name)
                    .ok_or_else(|| Reply::invalid(format!("Invalid status: must be one of all, ended or a subscription status, not {name}"), Some("status")))?,
            ),
        })
    }

    fn boolean(&self, name: &str) -> Result<Option<bool>, Reply> {
        match self.get(name) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => Err(Reply::invalid(
                format!("Invalid boolean: {other}"),
                Some(name),
            )),
        }
    }
}

/// `YYYY-MM-DD`, optionally followed by a release name (`2025-03-31.basil`).
fn is_version(version: &str) -> bool {
    let (date, rest) = version.split_at(version.len().min(10));
    NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok()
        && (rest.is_empty() || rest.starts_with('.'))
}

/// The key of `Authorization: Bearer <key>`.
fn bearer_key(headers: &HeaderMap) -> Option<String> {
    let value = header(headers, AUTHORIZATION.as_str())?;
    let (scheme, key) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| key.trim().to_owned())
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_dates_with_an_optional_name() {
        assert!(is_version("2025-03-31.basil"));
        assert!(is_version("2024-06-20"));
        assert!(!is_version("2024-13-01"));
        assert!(!is_version("latest"));
        assert!(!is_version("2024-06-20basil"));
    }

    #[test]
    fn event_types_match_exactly_or_by_wildcard() {
        assert!(type_matches(
            "customer.subscription.*",
            "customer.subscription.updated"
        ));
        assert!(!type_matches("customer.subscription.*", "customer.deleted"));
        assert!(type_matches("customer.deleted", "customer.deleted"));
        assert!(!type_matches("customer.deleted", "customer.deleted.x"));
    }
}
