//! Request middleware.

pub mod api;
