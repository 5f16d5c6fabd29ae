//! # waiaas-testkit
//!
//! Test environments for WAIaaS: a PostgreSQL database per test (cloned from a migrated
//! template, so tests run in parallel), Redis servers started and killed by tests, and
//! fixtures. It finds PostgreSQL through `WAIAAS_TEST_DATABASE_URL`, else starts one with
//! testcontainers when a Docker engine is reachable, else fails saying what to set.

mod fixtures;
mod history;
mod pg;
mod redis;

pub use fixtures::{Fixture, World, services};
pub use history::{History, HistoryReport, Resource, StaleRead};
pub use pg::{TestDb, admin_url, use_database_server, with_database};
pub use redis::{
    REDIS_URL_VAR, RedisCluster, RedisServer, raw_command, test_redis_url, unique_prefix,
};
