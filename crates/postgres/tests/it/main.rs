//! Integration tests of the PostgreSQL adapters against a real server: one database per test,
//! cloned from a migrated template.

mod approval;
mod bad_input;
mod batch;
mod budgets;
mod chain;
mod concurrency;
mod events;
mod fence;
mod holds;
mod idempotency;
mod mandates;
mod migrations;
mod pooler;
mod reads;
mod reconcile;
mod tenancy;
