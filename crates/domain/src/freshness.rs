//! How fresh a read must be, carried by the task that does it.
//!
//! Reads that may be served by a read replica (transaction and audit listings) must never
//! return data older than a write the caller was already told about. The API gives every
//! acknowledged write a consistency token (a position in the primary database's history,
//! for PostgreSQL its WAL position), the caller sends it back with its reads, and the API
//! runs the read inside [`scope`]; the PostgreSQL adapter then uses a replica only when that
//! replica has replayed at least [`required`], and the primary otherwise.
//!
//! ```
//! use waiaas_domain::freshness;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! assert_eq!(freshness::required(), None);
//! let seen = freshness::scope(0x16_B374_D848, async { freshness::required() }).await;
//! assert_eq!(seen, Some(0x16_B374_D848));
//! # });
//! ```

use std::future::Future;

tokio::task_local! {
    static AT_LEAST: u64;
}

/// Runs `work` requiring its replica-safe reads to reflect position `at_least`.
pub async fn scope<F: Future>(at_least: u64, work: F) -> F::Output {
    AT_LEAST.scope(at_least, work).await
}

/// The position the current task's reads must reflect, if it named one.
#[must_use]
pub fn required() -> Option<u64> {
    AT_LEAST.try_with(|p| *p).ok()
}
