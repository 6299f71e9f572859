//! The Stripe adapter. Today it holds the webhook signature scheme: verifying the
//! `Stripe-Signature` header of a delivery (the route's authentication) and signing a
//! payload the way Stripe does (for emulators and tests).

pub mod webhook_signature;

pub use webhook_signature::{SignatureError, WebhookSecrets, sign, verify};
