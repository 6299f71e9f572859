//! An in-memory emulator of the Stripe API subset onboarding reads, which also delivers
//! Stripe's webhooks: a subscription changed through the admin routes becomes an event, signed
//! and POSTed to the webhook URL with Stripe's retries, and the service's re-read of the
//! subscription finds the new state. Served with actix-web on a loopback port.
//!
//! # The API (`/v1`, `Authorization: Bearer <key>`)
//!
//! | route | answers |
//! | --- | --- |
//! | `GET /v1/subscriptions/{id}` | the subscription |
//! | `GET /v1/subscriptions` | a list, newest first; `status` (`all`, `ended`, a status; default: not ended), `customer`, `limit` (1–100, default 10), `starting_after` / `ending_before` |
//! | `GET /v1/customers/{id}` | the customer; `{"id", "object": "customer", "deleted": true}` once deleted |
//! | `GET /v1/events`, `GET /v1/events/{id}` | events, newest first; `type` (`customer.subscription.*` works), `delivery_success`, paging as above |
//!
//! Errors have Stripe's shape, `{"error": {"type", "message", "code"?, "param"?}}`: 401 for a
//! missing or wrong key, 404 `resource_missing` for an unknown id, 400 for an unknown parameter
//! or a bad `limit`. Every answer carries `Request-Id` and `Stripe-Version` (the one asked for,
//! else the account's, [`DEFAULT_API_VERSION`]). Subscriptions show the billing period
//! (`current_period_start` / `_end`) on their item, and for versions before 2025-03-31 on the
//! subscription too, as Stripe does.
//!
//! # Admin routes (`/_emulator`, no key, camelCase JSON)
//!
//! | route | does |
//! | --- | --- |
//! | `POST /customers`, `DELETE /customers/{id}` | [`NewCustomer`]; deletion cancels the customer's subscriptions |
//! | `POST /subscriptions`, `DELETE /subscriptions/{id}` | [`NewSubscription`]; deletion cancels, then forgets (reads answer 404) |
//! | `POST /subscriptions/{id}/{change}` | a [`SubscriptionChange`]: `status`, `trial-end`, `cancel-at-period-end`, `cancel-at`, `cancel`, `price`, `pause`, `resume` |
//! | `GET /events`, `GET /deliveries`, `GET /requests` | events (oldest first), [`DeliveryRecord`]s, [`ApiRequest`]s |
//! | `GET`, `PUT`, `DELETE /webhook` | the endpoint: `{"url", "secret": "whsec_…[,whsec_…]"}` |
//! | `GET`, `DELETE /faults`; `POST /faults/api`, `POST /faults/delivery` | [`ApiFault`], [`DeliveryFault`] |
//! | `POST /reset`, `GET /health` | |
//!
//! Each change answers the object and the events it recorded (`customer.subscription.created`,
//! `.updated` with `previous_attributes`, `.deleted`, `.paused`, `.resumed`, `.trial_will_end`,
//! `customer.created`, `customer.deleted`), each carrying the object as it was at that moment.
//!
//! # Deliveries
//!
//! Each event is POSTed once to the endpoint set when it happened, with `Stripe-Signature`
//! (made by `onboarding_adapters_stripe::sign`, fresh on every attempt). A non-2xx answer or no
//! answer is retried per the [`RetryPolicy`] while later events go ahead, so order is not
//! guaranteed, as with Stripe. Delivery faults drop, double or reorder deliveries.
//!
//! # Use
//!
//! `stripe-emulator --bind 127.0.0.1:12111 --webhook-url URL --webhook-secret whsec_…` runs it
//! alone. In-process, [`RunningEmulator::start_on_loopback`] serves on a free port and
//! [`Emulator::set_webhook`] points it at a receiver bound later; tests drive it through the
//! [`Emulator`] handle and wait with [`Emulator::wait_for_deliveries`].

mod changes;
mod config;
mod delivery;
mod emulator;
mod events;
mod faults;
mod lifecycle;
mod objects;
mod reply;
mod routes;
mod server;
mod store;

pub use changes::{AdminError, Change, NewCustomer, NewSubscription, SubscriptionChange, TrialEnd};
pub use config::{
    DEFAULT_API_KEY, DEFAULT_API_VERSION, EmulatorConfig, RetryPolicy, WebhookEndpoint,
};
pub use delivery::{DeliveryOutcome, DeliveryRecord};
pub use emulator::{ApiRequest, Emulator};
pub use emulator_kit::Scoped;
pub use faults::{ApiFault, ApiFaultAction, DeliveryFault, DeliveryFaultAction};
pub use objects::{Interval, PriceSpec, SubscriptionStatus};
pub use server::RunningEmulator;
