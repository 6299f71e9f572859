//! Black-box tests of the service: the real server on port 0, a fresh SQLite file and the
//! Stigg emulator, driven over HTTP.

mod helpers;
mod provision;
