//! HTTP routes: the emulated Stripe API and the emulator's own admin routes.

mod admin;
mod api;

use actix_web::web;

use crate::emulator::Emulator;

pub(crate) fn configure(emulator: &Emulator, cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::Data::new(emulator.clone()));
    api::configure(cfg);
    admin::configure(cfg);
}
