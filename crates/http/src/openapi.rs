//! The OpenAPI document, generated from the handlers' annotations and served at
//! `/openapi.json`.

use std::sync::LazyLock;

use serde_json::{Map, Value, json};

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use waiaas_domain::text::INVISIBLE_BMP_CLASS;

use crate::routes::{
    agents, budgets, health, holds, home, mandates, notifications, owners, transactions, wallets,
    webhooks,
};
use crate::{sse, ws};

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
        home::home,
        agents::create_agent,
        agents::list_agents,
        agents::get_agent,
        agents::update_agent,
        agents::delete_agent,
        agents::create_key,
        agents::list_keys,
        agents::revoke_key,
        owners::list_owner_keys,
        owners::create_owner_key,
        owners::revoke_owner_key,
        budgets::get_agent_budget,
        budgets::put_agent_budget,
        budgets::get_owner_budget,
        budgets::put_owner_budget,
        wallets::create_wallet,
        wallets::list_wallets,
        wallets::get_wallet,
        wallets::get_balance,
        wallets::get_summary,
        wallets::get_policy,
        wallets::put_policy,
        sse::wallet_events,
        ws::websocket,
        transactions::deposit,
        transactions::transfer,
        transactions::sweep,
        transactions::approve,
        transactions::reject,
        transactions::get_transaction,
        transactions::list_transactions,
        transactions::owner_transactions,
        mandates::create_mandate,
        mandates::list_mandates,
        mandates::get_mandate,
        mandates::revoke_mandate,
        holds::create_hold,
        holds::list_holds,
        holds::get_hold,
        holds::capture_hold,
        holds::void_hold,
        notifications::audit_logs,
        notifications::ledger_head,
        notifications::list_notifications,
        notifications::mark_read,
        webhooks::create_webhook,
        webhooks::list_webhooks,
        webhooks::get_webhook,
        webhooks::update_webhook,
        webhooks::delete_webhook,
        webhooks::rotate_secret,
        webhooks::list_deliveries,
        webhooks::retry_delivery,
    ),
    modifiers(&Security),
    tags(
        (name = "health", description = "Probes, metrics and this document; no authentication"),
        (name = "owners", description = "Owner registration and sessions"),
        (name = "agents", description = "Agents and their API keys"),
        (name = "wallets", description = "Wallets, balances, summaries, policies and live events"),
        (name = "transactions", description = "Deposits, transfers, payments, sweeps and approvals"),
        (name = "budgets", description = "Budgets of agents and owners over all their wallets, per asset"),
        (name = "mandates", description = "Mandates: an owner's pre-approval of an agent's spending from one wallet"),
        (name = "holds", description = "Holds: reserve an amount now, capture at most that much later, or void it"),
        (name = "activity", description = "The audit trail and notifications"),
        (name = "webhooks", description = "Webhook endpoints for the owner's events, signed; their deliveries"),
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

/// The document, built once: what the annotations describe, with what they cannot say
/// added (see [`complete`]).
pub(crate) fn document() -> &'static Value {
    static DOC: LazyLock<Value> = LazyLock::new(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the document serialises");
        complete(&mut doc);
        doc
    });
    &DOC
}

/// Adds to the generated document what is true of many operations at once or is computed
/// from the domain's rules, so it tells the truth about every answer and every input:
///
/// - the answers the framework gives before a handler runs: 400 (a malformed path, query or
///   body), 413 and 415 (a body too large or not JSON), 401 (no valid credential), 429 (rate
///   limited, with `Retry-After`), and 503 with `Retry-After` on every `/v1` operation (the
///   database is unavailable, too slow, or a wallet is locked; see docs/api.md);
/// - the constraints the service enforces on names, destinations, counterparties, memos,
///   asset codes, amounts, limits, cursors, audit filters and idempotency keys.
///
/// # Panics
/// When a schema or parameter named here no longer exists: the unit tests build the
/// document, so a renamed field cannot leave the description behind.
fn complete(doc: &mut Value) {
    constrain_inputs(doc);
    let paths = doc["paths"].as_object_mut().expect("paths");
    for (path, item) in paths.iter_mut() {
        let item = item.as_object_mut().expect("a path item");
        for (_method, op) in item.iter_mut() {
            let Some(op) = op.as_object_mut() else {
                continue;
            };
            add_common_responses(path, op);
        }
    }
}

/// An error answer with the common body, and `Retry-After` when the status carries it.
fn error_response(description: &str, retry_after: bool) -> Value {
    let mut response = json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    });
    if retry_after {
        response["headers"] = json!({
            "Retry-After": {
                "description": "Seconds to wait before retrying",
                "schema": {"type": "integer", "minimum": 1},
            }
        });
    }
    response
}

fn add_common_responses(path: &str, op: &mut Map<String, Value>) {
    let has_body = op.contains_key("requestBody");
    let has_params = op
        .get("parameters")
        .and_then(Value::as_array)
        .is_some_and(|p| !p.is_empty());
    let schemes: Vec<String> = op
        .get("security")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .flat_map(|s| s.keys().cloned())
        .collect();
    let responses = op
        .get_mut("responses")
        .and_then(Value::as_object_mut)
        .expect("every operation lists its responses");
    let mut add = |status: &str, response: Value| {
        responses.entry(status.to_owned()).or_insert(response);
    };
    if has_body || has_params {
        add(
            "400",
            error_response("A malformed path, query, header or body", false),
        );
    }
    if has_body {
        add(
            "413",
            error_response("`payload_too_large`: the body is over the limit", false),
        );
        add(
            "415",
            error_response(
                "`unsupported_media_type`: the body is not `application/json`",
                false,
            ),
        );
    }
    if !schemes.is_empty() {
        add(
            "401",
            error_response(
                "`unauthenticated`: no credential was presented, or it is not valid",
                false,
            ),
        );
    }
    if schemes.iter().any(|s| s == "bootstrap") {
        add(
            "403",
            error_response("A wrong bootstrap token, or registration disabled", false),
        );
    }
    if path.starts_with("/v1/") {
        // Rate limits apply per credential and, for failed authentication, per address.
        add(
            "429",
            error_response("`rate_limited`: retry after `Retry-After` seconds", true),
        );
        add(
            "503",
            error_response(
                "`database_unavailable`, `timeout`, `wallet_busy`, `outcome_unknown` or \
                 `unavailable`: the infrastructure failed, not the request; retry after \
                 `Retry-After` seconds (a money-moving request with the same Idempotency-Key)",
                true,
            ),
        );
    }
    // A 429 or 503 a handler documented itself carries `Retry-After` too.
    if path.starts_with("/v1/") {
        for status in ["429", "503"] {
            if let Some(response) = responses.get_mut(status) {
                let described = response["description"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                *response = error_response(&described, true);
            }
        }
    }
}

/// Merges `patch` into the object at `pointer`.
fn merge(doc: &mut Value, pointer: &str, patch: &Value) {
    let target = doc
        .pointer_mut(pointer)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("the document has no object at {pointer}"));
    for (k, v) in patch.as_object().expect("a patch is an object") {
        target.insert(k.clone(), v.clone());
    }
}

/// Merges `patch` into the parameter `name` of the operation at `path` and `method`.
fn merge_param(doc: &mut Value, path: &str, method: &str, name: &str, patch: &Value) {
    let params = doc["paths"][path][method]["parameters"]
        .as_array_mut()
        .unwrap_or_else(|| panic!("{method} {path} has no parameters"));
    let param = params
        .iter_mut()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{method} {path} has no parameter {name}"));
    let schema = param["schema"].as_object_mut().expect("a parameter schema");
    for (k, v) in patch.as_object().expect("a patch is an object") {
        schema.insert(k.clone(), v.clone());
    }
}

/// Every status a transaction (a hold included) can have.
const STATUSES: [&str; 9] = [
    "pending_approval",
    "completed",
    "rejected",
    "denied",
    "failed",
    "held",
    "captured",
    "voided",
    "expired",
];

/// A hyphenated UUID.
const UUID: &str = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";
/// Any case of `wallet:`, reserved for wallets.
const NOT_WALLET: &str = "(?![wW][aA][lL][lL][eE][tT]:)";

/// The domain's rules on input, as JSON Schema: see `waiaas_domain::values` and
/// `waiaas_domain::text`. Text is also NFKC-normalised before it is checked, which a pattern
/// cannot say; for ASCII it changes nothing.
fn constrain_inputs(doc: &mut Value) {
    let inv = INVISIBLE_BMP_CLASS;
    let name = json!({
        "minLength": 1,
        "maxLength": 100,
        "pattern": format!("^[^{inv}]*[^\\s{inv}][^{inv}]*$"),
    });
    let destination = json!({
        "minLength": 1,
        "maxLength": 128,
        "pattern": format!("^{NOT_WALLET}[^\\s{inv}]+$"),
    });
    let counterparty = json!({
        "type": "string",
        "minLength": 1,
        "pattern": format!("^(?:wallet:{UUID}|{NOT_WALLET}[^\\s{inv}]{{1,128}})$"),
    });
    let memo = json!({
        "maxLength": 500,
        "pattern": "^[^\\u0000-\\u0009\\u000B-\\u001F\\u007F-\\u009F\\u202A-\\u202E\\u2066-\\u2069]*$",
    });
    let positive = json!({"minimum": 1, "maximum": i64::MAX});
    let non_negative = json!({"minimum": 0, "maximum": i64::MAX});
    let count = json!({"format": "int64", "minimum": 0, "maximum": u32::MAX});
    let schemas = "/components/schemas";
    for schema in ["CreateOwner", "CreateAgent", "CreateWallet"] {
        merge(doc, &format!("{schemas}/{schema}/properties/name"), &name);
    }
    merge(
        doc,
        &format!("{schemas}/CreateWallet/properties/asset"),
        &json!({"pattern": "^[A-Z][A-Z0-9]{1,11}$"}),
    );
    for schema in ["DepositBody", "TransferBody", "HoldBody"] {
        merge(
            doc,
            &format!("{schemas}/{schema}/properties/amount"),
            &positive,
        );
        merge(doc, &format!("{schemas}/{schema}/properties/memo"), &memo);
    }
    for schema in ["TransferBody", "HoldBody", "MandateBody"] {
        merge(
            doc,
            &format!("{schemas}/{schema}/properties/destination"),
            &destination,
        );
    }
    // Exactly one of the two targets.
    let target = |given: &str, absent: &str| {
        json!({
            "required": [given],
            "properties": {given: {"type": "string"}, absent: {"type": "null"}},
        })
    };
    for schema in ["TransferBody", "HoldBody"] {
        merge(
            doc,
            &format!("{schemas}/{schema}"),
            &json!({"oneOf": [target("to_wallet_id", "destination"), target("destination", "to_wallet_id")]}),
        );
    }
    for field in ["max_amount", "total_amount"] {
        merge(
            doc,
            &format!("{schemas}/MandateBody/properties/{field}"),
            &positive,
        );
    }
    merge(
        doc,
        &format!("{schemas}/CaptureBody/properties/amount"),
        &positive,
    );
    // Webhook endpoints: the event types are an enumeration (or `*`), the URL an https one.
    let mut types = vec!["*"];
    types.extend_from_slice(waiaas_domain::webhooks::EVENT_TYPES);
    for schema in ["WebhookBody", "WebhookPatchBody"] {
        merge(
            doc,
            &format!("{schemas}/{schema}/properties/events/items"),
            &json!({"enum": types}),
        );
        merge(
            doc,
            &format!("{schemas}/{schema}/properties/url"),
            &json!({"pattern": "^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[^\\s]*)?$"}),
        );
        merge(
            doc,
            &format!("{schemas}/{schema}/properties/description"),
            &memo,
        );
    }
    for field in ["max_per_transaction", "daily_limit", "monthly_limit"] {
        merge(
            doc,
            &format!("{schemas}/BudgetLimitsDto/properties/{field}"),
            &non_negative,
        );
    }
    // A budget's keys are asset codes.
    merge(
        doc,
        &format!("{schemas}/BudgetsDto"),
        &json!({"propertyNames": {"pattern": "^[A-Z][A-Z0-9]{1,11}$"}, "maxProperties": waiaas_domain::services::MAX_BUDGET_ASSETS}),
    );
    for field in [
        "max_per_transaction",
        "daily_limit",
        "approval_above",
        "monthly_limit",
    ] {
        merge(
            doc,
            &format!("{schemas}/PolicyBody/properties/{field}"),
            &non_negative,
        );
    }
    for field in ["allowed_destinations", "blocked_destinations"] {
        merge(
            doc,
            &format!("{schemas}/PolicyBody/properties/{field}"),
            &json!({"items": counterparty, "maxItems": waiaas_domain::policy::MAX_LIST_LEN}),
        );
    }
    merge(
        doc,
        &format!("{schemas}/PolicyBody/properties/max_transactions_per_hour"),
        &count,
    );

    let key = json!({"minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"});
    for path in [
        "/v1/wallets/{id}/deposits",
        "/v1/wallets/{id}/transfers",
        "/v1/wallets/{id}/sweep",
        "/v1/wallets/{id}/holds",
        "/v1/holds/{id}/capture",
    ] {
        merge_param(doc, path, "post", "Idempotency-Key", &key);
    }
    let tx_cursor = json!({"pattern": format!("^-?[0-9]{{1,18}}_{UUID}$")});
    for path in ["/v1/wallets/{id}/transactions", "/v1/transactions"] {
        merge_param(doc, path, "get", "status", &json!({"enum": STATUSES}));
        merge_param(
            doc,
            path,
            "get",
            "kind",
            &json!({"enum": ["deposit", "transfer", "payment", "sweep", "hold"]}),
        );
    }
    merge_param(
        doc,
        "/v1/wallets/{id}/holds",
        "get",
        "status",
        &json!({"enum": STATUSES}),
    );
    merge_param(doc, "/v1/wallets/{id}/mandates", "get", "limit", &count);
    merge_param(doc, "/v1/webhooks/{id}/deliveries", "get", "limit", &count);
    merge_param(
        doc,
        "/v1/wallets/{id}/events",
        "get",
        "Last-Event-ID",
        &json!({"type": "string", "pattern": "^[0-9]{1,18}$"}),
    );
    for (path, cursor) in [
        ("/v1/wallets/{id}/transactions", tx_cursor.clone()),
        ("/v1/wallets/{id}/holds", tx_cursor.clone()),
        ("/v1/transactions", tx_cursor),
        ("/v1/notifications", json!({"pattern": format!("^{UUID}$")})),
    ] {
        merge_param(doc, path, "get", "limit", &count);
        merge_param(doc, path, "get", "cursor", &cursor);
    }
    merge_param(doc, "/v1/audit-logs", "get", "limit", &count);
    let filter = json!({"minLength": 1, "maxLength": 200, "pattern": format!("^[^{inv}]+$")});
    for name in ["resource_type", "resource_id"] {
        merge_param(doc, "/v1/audit-logs", "get", name, &filter);
    }
}
