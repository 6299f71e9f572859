//! Request middleware.

pub mod api;
pub mod connection;
pub mod metrics;
