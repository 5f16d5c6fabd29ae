//! # waiaas-app
//!
//! The composition root of WAIaaS: settings, telemetry, and the wiring of the domain's
//! services to their adapters. The binaries are thin wrappers around this crate.

pub mod commands;
pub mod database;
pub mod demo;
pub mod health;
pub mod holds;
pub mod metrics;
pub mod retention;
pub mod roles;
pub mod sealer;
pub mod serve;
pub mod settings;
pub mod telemetry;
pub mod tls;
pub mod webhooks;
pub mod wiring;

pub use settings::Settings;
pub use wiring::{App, build, build_on};
