//! The OpenAPI document, generated from the handlers' annotations and served at
//! `/openapi.json`.

use std::sync::LazyLock;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{agents, health, notifications, owners, transactions, wallets};
use crate::sse;

/// The API's description: every route of [`crate::routes::api`].
#[derive(OpenApi)]
#[openapi(
    info(
        title = "WAIaaS API",
        description = "Wallets for AI agents: owners register agents, agents hold wallets, \
                       policies decide every transfer. Amounts are integers in minor units; \
                       errors are `{\"error\": {\"code\", \"message\"}}`."
    ),
    paths(
        health::healthz,
        health::readyz,
        health::metrics,
        health::openapi_json,
        owners::create_owner,
        owners::create_session,
        owners::delete_session,
        agents::create_agent,
        agents::list_agents,
        agents::get_agent,
        agents::update_agent,
        agents::delete_agent,
        agents::create_key,
        wallets::create_wallet,
        wallets::list_wallets,
        wallets::get_wallet,
        wallets::get_balance,
        wallets::get_summary,
        wallets::get_policy,
        wallets::put_policy,
        sse::wallet_events,
        transactions::deposit,
        transactions::transfer,
        transactions::sweep,
        transactions::approve,
        transactions::reject,
        transactions::get_transaction,
        transactions::list_transactions,
        notifications::audit_logs,
        notifications::list_notifications,
        notifications::mark_read,
    ),
    modifiers(&Security),
    tags(
        (name = "health", description = "Probes, metrics and this document; no authentication"),
        (name = "owners", description = "Owner registration and sessions"),
        (name = "agents", description = "Agents and their API keys"),
        (name = "wallets", description = "Wallets, balances, summaries, policies and live events"),
        (name = "transactions", description = "Deposits, transfers, payments, sweeps and approvals"),
        (name = "activity", description = "The audit trail and notifications"),
    )
)]
pub(crate) struct ApiDoc;

/// Declares the two bearer schemes: API keys and session tokens for every `/v1` call, and
/// the bootstrap token for owner registration.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key (`wak_…`) or a session token (`wst_…`)"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "bootstrap",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The operator's bootstrap token"))
                    .build(),
            ),
        );
    }
}

/// The document, built once.
pub(crate) fn document() -> &'static utoipa::openapi::OpenApi {
    static DOC: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(ApiDoc::openapi);
    &DOC
}
