//! The route table, grouped by resource, and the answers for unknown routes and methods.

pub(crate) mod agents;
pub(crate) mod budgets;
pub(crate) mod health;
pub(crate) mod holds;
pub(crate) mod home;
pub(crate) mod mandates;
pub(crate) mod notifications;
pub(crate) mod owners;
pub(crate) mod transactions;
pub(crate) mod wallets;
pub(crate) mod webhooks;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};

use crate::error::ApiError;
use crate::{SharedState, console, sse, ws};

/// Every route of the API, without the layers (see [`crate::router`]).
pub(crate) fn api() -> Router<SharedState> {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(health::openapi_json))
        .route("/console", get(console::index))
        .route("/console/", get(console::slash))
        .route("/console/app.js", get(console::script))
        .route("/console/app.css", get(console::style))
        .route("/v1/owners", post(owners::create_owner))
        .route("/v1/sessions", post(owners::create_session))
        .route("/v1/sessions/current", delete(owners::delete_session))
        .route("/v1/home", get(home::home))
        .route(
            "/v1/agents",
            post(agents::create_agent).get(agents::list_agents),
        )
        .route(
            "/v1/agents/{id}",
            get(agents::get_agent)
                .patch(agents::update_agent)
                .delete(agents::delete_agent),
        )
        .route(
            "/v1/agents/{id}/keys",
            post(agents::create_key).get(agents::list_keys),
        )
        .route("/v1/agents/{id}/keys/{key_id}", delete(agents::revoke_key))
        .route(
            "/v1/agents/{id}/budget",
            get(budgets::get_agent_budget).put(budgets::put_agent_budget),
        )
        .route(
            "/v1/owners/me/keys",
            get(owners::list_owner_keys).post(owners::create_owner_key),
        )
        .route(
            "/v1/owners/me/keys/{key_id}",
            delete(owners::revoke_owner_key),
        )
        .route(
            "/v1/owners/me/budget",
            get(budgets::get_owner_budget).put(budgets::put_owner_budget),
        )
        .route("/v1/agents/{id}/wallets", post(wallets::create_wallet))
        .route("/v1/wallets", get(wallets::list_wallets))
        .route("/v1/wallets/{id}", get(wallets::get_wallet))
        .route("/v1/wallets/{id}/balance", get(wallets::get_balance))
        .route("/v1/wallets/{id}/summary", get(wallets::get_summary))
        .route(
            "/v1/wallets/{id}/policy",
            get(wallets::get_policy).put(wallets::put_policy),
        )
        .route("/v1/wallets/{id}/deposits", post(transactions::deposit))
        .route("/v1/wallets/{id}/transfers", post(transactions::transfer))
        .route("/v1/wallets/{id}/sweep", post(transactions::sweep))
        .route(
            "/v1/wallets/{id}/transactions",
            get(transactions::list_transactions),
        )
        .route("/v1/wallets/{id}/events", get(sse::wallet_events))
        .route("/v1/ws", get(ws::websocket))
        .route(
            "/v1/wallets/{id}/holds",
            post(holds::create_hold).get(holds::list_holds),
        )
        .route(
            "/v1/wallets/{id}/mandates",
            post(mandates::create_mandate).get(mandates::list_mandates),
        )
        .route(
            "/v1/mandates/{id}",
            get(mandates::get_mandate).delete(mandates::revoke_mandate),
        )
        .route("/v1/holds/{id}", get(holds::get_hold))
        .route("/v1/holds/{id}/capture", post(holds::capture_hold))
        .route("/v1/holds/{id}/void", post(holds::void_hold))
        .route("/v1/transactions", get(transactions::owner_transactions))
        .route("/v1/transactions/{id}", get(transactions::get_transaction))
        .route("/v1/transactions/{id}/approve", post(transactions::approve))
        .route("/v1/transactions/{id}/reject", post(transactions::reject))
        .route(
            "/v1/webhooks",
            post(webhooks::create_webhook).get(webhooks::list_webhooks),
        )
        .route(
            "/v1/webhooks/{id}",
            get(webhooks::get_webhook)
                .patch(webhooks::update_webhook)
                .delete(webhooks::delete_webhook),
        )
        .route(
            "/v1/webhooks/{id}/rotate-secret",
            post(webhooks::rotate_secret),
        )
        .route(
            "/v1/webhooks/{id}/deliveries",
            get(webhooks::list_deliveries),
        )
        .route(
            "/v1/webhooks/{id}/deliveries/{delivery_id}/retry",
            post(webhooks::retry_delivery),
        )
        .route("/v1/audit-logs", get(notifications::audit_logs))
        .route("/v1/ledger/head", get(notifications::ledger_head))
        .route("/v1/notifications", get(notifications::list_notifications))
        .route(
            "/v1/notifications/{id}/read",
            post(notifications::mark_read),
        )
}

/// The answer for a path no route matches.
pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

/// The answer for a known path with a method it does not take.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this path does not take this method",
    )
}
