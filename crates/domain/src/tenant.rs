//! The tenant a piece of work acts for, carried by the task that does it.
//!
//! The API scopes every authenticated request to its principal's owner
//! ([`scope`]); the PostgreSQL adapter passes the tenant to the database on every
//! connection it takes (`waiaas.tenant`), where row-level security on the tenant tables lets
//! the work see and write that owner's rows only. A filter forgotten in one query can then
//! no longer return another owner's rows. Work outside any scope (the service's own jobs:
//! posting workers, relays, the sealer, retention, reconciliation) acts for [`Tenant::System`]
//! and sees every row, as it must. A task spawned from a scoped one does not inherit the
//! scope: wrap its future in [`scope`] again when it acts for the same owner.
//!
//! ```
//! use waiaas_domain::tenant::{self, Tenant};
//! use waiaas_domain::OwnerId;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let owner = OwnerId::new();
//! assert_eq!(tenant::current(), Tenant::System);
//! let seen = tenant::scope(Tenant::Owner(owner), async { tenant::current() }).await;
//! assert_eq!(seen, Tenant::Owner(owner));
//! # });
//! ```

use std::future::Future;

use crate::ids::OwnerId;

/// Whom a piece of work acts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tenant {
    /// One owner: only its rows are visible.
    Owner(OwnerId),
    /// The service itself: every row is visible.
    System,
}

impl Tenant {
    /// The value of the `waiaas.tenant` database setting: the owner's id, or `system`.
    #[must_use]
    pub fn setting(self) -> String {
        match self {
            Self::Owner(owner) => owner.to_string(),
            Self::System => "system".to_owned(),
        }
    }
}

tokio::task_local! {
    static TENANT: Tenant;
}

/// Runs `work` acting for `tenant`.
pub async fn scope<F: Future>(tenant: Tenant, work: F) -> F::Output {
    TENANT.scope(tenant, work).await
}

/// The tenant the current task acts for ([`Tenant::System`] outside any [`scope`]).
#[must_use]
pub fn current() -> Tenant {
    TENANT.try_with(|t| *t).unwrap_or(Tenant::System)
}
