//! The HTTP room: what a request meets, from the API middleware to the answer.

pub mod debug_log;
pub mod error;
pub mod middleware;
pub mod openapi;
pub mod request;
pub mod retention;
pub mod routes;
pub mod state;
