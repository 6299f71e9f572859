//! Request middleware.

pub mod api;
pub mod metrics;
