//! The ports: what the domain needs from the outside world, as `async_trait` traits held as
//! `Arc<dyn Port>`. Adapters live in other crates; mocks are generated beside each trait.

mod cache;
mod commands;
mod infra;
mod repositories;

pub use cache::*;
pub use commands::*;
pub use infra::*;
pub use repositories::*;
