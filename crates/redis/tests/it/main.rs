//! Integration tests of the Redis adapters, against real servers: the shared one named by
//! `WAIAAS_TEST_REDIS_URL` (a key prefix per test) and servers the tests start and kill.

mod cache_store;
mod cluster;
mod faults;
mod locks;
mod pubsub;
mod race;
mod rate_limit;
mod support;
