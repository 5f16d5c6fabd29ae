//! # waiaas-testkit
//!
//! Test environments for WAIaaS: a PostgreSQL database per test (cloned from a migrated
//! template, so tests run in parallel), Redis servers started and killed by tests, and
//! fixtures, private PostgreSQL servers tests may crash, and a proxy that breaks a connection
//! at a chosen message. It finds PostgreSQL through `WAIAAS_TEST_DATABASE_URL`, else starts one with
//! testcontainers when a Docker engine is reachable, else fails saying what to set.

mod fixtures;
mod history;
mod pg;
mod pg_server;
mod pgbouncer;
mod proxy;
mod redis;
mod tls;

pub use fixtures::{Fixture, World, services};
pub use history::{History, HistoryReport, Resource, StaleRead};
pub use pg::{TestDb, admin_url, tamper, text_of, use_database_server, with_database, with_user};
pub use pg_server::PgServer;
pub use pgbouncer::PgBouncer;
pub use proxy::TcpProxy;
pub use redis::{
    REDIS_URL_VAR, RedisCluster, RedisSentinels, RedisServer, raw_command, test_redis_url,
    unique_prefix,
};
pub use tls::TestCerts;
