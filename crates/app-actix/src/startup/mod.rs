//! Wiring: settings → adapters → use cases ([`Services`]) → HTTP server ([`Application`]).
//! Everything costly (catalog, pool, migrations, HTTP client) is done here once, never on the
//! request path; the rooms (`http`, `cli`) only use what is built here.

mod background;
pub mod clock;
mod server;
mod services;
mod stigg_budget;
mod stop;
pub mod stripe_sync;
mod sync_worker;

pub use background::BackgroundTasks;
pub use server::{Application, shutdown_grace, stop_on_signals};
pub use services::{Services, batch_deadline, open_database};
pub use stop::StopFlag;
pub use stripe_sync::StripeSync;
pub use sync_worker::SyncWorker;
