//! # waiaas-testkit
//!
//! Test environments for WAIaaS: a PostgreSQL database per test (cloned from a migrated
//! template, so tests run in parallel), Redis servers started and killed by tests, and
//! fixtures. It finds PostgreSQL through `WAIAAS_TEST_DATABASE_URL`, else starts one with
//! testcontainers when a Docker engine is reachable, else fails saying what to set.

mod fixtures;
mod pg;

pub use fixtures::{Fixture, World, services};
pub use pg::{TestDb, admin_url};
