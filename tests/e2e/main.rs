//! End-to-end tests: the service over real HTTP on a free port, against real PostgreSQL and
//! Redis (the shared test server with a key prefix per test, or a `redis-server` the test
//! starts and kills).

mod api_keys;
mod bad_input;
mod budgets;
mod cluster;
mod console;
mod database_faults;
mod disaster_recovery;
mod events;
mod hardening;
mod holds;
mod idempotency;
mod isolation;
mod keys;
mod mandates;
mod pooler;
mod redis_failover;
mod redis_outage;
mod replicas;
mod roles;
mod search;
mod serve_binary;
mod streams;
mod telemetry;
mod tls;
mod traces;
mod walkthrough;
mod webhooks;
