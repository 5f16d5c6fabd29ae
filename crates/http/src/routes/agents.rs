//! Agents and their API keys, managed by their owner.

use axum::extract::State;
use axum::http::StatusCode;
use uuid::Uuid;
use waiaas_domain::{Agent, AgentId, Principal};

use crate::SharedState;
use crate::auth::Caller;
use crate::dto::{
    AgentDto, CreateAgent, CreateKey, ErrorBody, Items, KeyCreated, KeyDto, UpdateAgent,
};
use crate::error::ApiError;
use crate::extract::{Json, Object, Path};

/// The agents as shown, each with its presence (`null` when it cannot be known).
pub(crate) async fn with_presence(state: &SharedState, agents: Vec<Agent>) -> Vec<AgentDto> {
    let ids: Vec<AgentId> = agents.iter().map(|a| a.id).collect();
    let presence = state.streams.presence(&ids).await;
    agents
        .into_iter()
        .enumerate()
        .map(|(i, a)| AgentDto::of(a, presence.as_ref().and_then(|p| p.get(i).copied())))
        .collect()
}

async fn one_with_presence(state: &SharedState, agent: Agent) -> AgentDto {
    let presence = state.streams.presence(&[agent.id]).await;
    AgentDto::of(agent, presence.and_then(|p| p.first().copied()))
}

/// Registers an agent.
#[utoipa::path(post, path = "/v1/agents", tag = "agents",
    request_body = CreateAgent,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The agent", body = AgentDto),
        (status = 400, description = "Malformed body or invalid name", body = ErrorBody),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 403, description = "Agents cannot register agents", body = ErrorBody),
    ))]
pub(crate) async fn create_agent(
    State(state): State<SharedState>,
    caller: Caller,
    Json(body): Json<CreateAgent>,
) -> Result<(StatusCode, axum::Json<AgentDto>), ApiError> {
    let owner_id = caller.owner("register agents")?;
    let agent = state
        .services
        .create_agent(owner_id, &body.name, &caller.audit)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(one_with_presence(&state, agent).await),
    ))
}

/// The owner's agents (deleted ones excluded); an agent sees itself.
#[utoipa::path(get, path = "/v1/agents", tag = "agents",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The agents", body = Items<AgentDto>),
        (status = 401, description = "No valid credential", body = ErrorBody),
    ))]
pub(crate) async fn list_agents(
    State(state): State<SharedState>,
    caller: Caller,
) -> Result<axum::Json<Items<AgentDto>>, ApiError> {
    let agents = match caller.principal {
        Principal::Owner { owner_id } => state.services.list_agents(owner_id).await?,
        Principal::Agent { agent_id, .. } => {
            vec![
                state
                    .services
                    .get_agent(&caller.principal, agent_id)
                    .await?,
            ]
        }
    };
    Ok(axum::Json(Items {
        items: with_presence(&state, agents).await,
    }))
}

/// One agent, to its owner or to itself.
#[utoipa::path(get, path = "/v1/agents/{id}", tag = "agents",
    params(("id" = Uuid, Path, description = "The agent")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The agent", body = AgentDto),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 404, description = "Missing, deleted or another tenant's", body = ErrorBody),
    ))]
pub(crate) async fn get_agent(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<AgentDto>, ApiError> {
    let agent = state
        .services
        .get_agent(&caller.principal, AgentId::from_uuid(id))
        .await?;
    Ok(axum::Json(one_with_presence(&state, agent).await))
}

/// Suspends (`suspended`: may read, may not move money) or reactivates (`active`) an agent.
#[utoipa::path(patch, path = "/v1/agents/{id}", tag = "agents",
    params(("id" = Uuid, Path, description = "The agent")),
    request_body = UpdateAgent,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The agent", body = AgentDto),
        (status = 400, description = "Malformed body or a status other than active/suspended", body = ErrorBody),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 403, description = "Agents cannot change agents", body = ErrorBody),
        (status = 404, description = "Missing, deleted or another tenant's", body = ErrorBody),
    ))]
pub(crate) async fn update_agent(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Json(body): Json<UpdateAgent>,
) -> Result<axum::Json<AgentDto>, ApiError> {
    let owner_id = caller.owner("change agents")?;
    let agent = state
        .services
        .set_agent_status(
            owner_id,
            AgentId::from_uuid(id),
            body.status.into(),
            &caller.audit,
        )
        .await?;
    Ok(axum::Json(one_with_presence(&state, agent).await))
}

/// Deletes an agent: its keys and sessions stop working at once; its wallets and their
/// history stay readable by the owner.
#[utoipa::path(delete, path = "/v1/agents/{id}", tag = "agents",
    params(("id" = Uuid, Path, description = "The agent")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 403, description = "Agents cannot delete agents", body = ErrorBody),
        (status = 404, description = "Missing, already deleted or another tenant's", body = ErrorBody),
    ))]
pub(crate) async fn delete_agent(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    let owner_id = caller.owner("delete agents")?;
    state
        .services
        .delete_agent(owner_id, AgentId::from_uuid(id), &caller.audit)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Issues a new API key for an agent (shown once). With `{"expires_in_s": n}` (1 s to 10
/// years) the key stops working after n seconds (then a 401), and a session opened with it
/// ends no later than the key; without a body it never expires.
#[utoipa::path(post, path = "/v1/agents/{id}/keys", tag = "agents",
    params(("id" = Uuid, Path, description = "The agent")),
    request_body(content = Option<CreateKey>, description = "Optional: the key's lifetime"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The key, shown once", body = KeyCreated),
        (status = 400, description = "Malformed id or body, a lifetime out of bounds", body = ErrorBody),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 403, description = "Agents cannot issue keys", body = ErrorBody),
        (status = 404, description = "Missing, deleted or another tenant's", body = ErrorBody),
    ))]
pub(crate) async fn create_key(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    body: Option<Json<Option<Object<CreateKey>>>>,
) -> Result<(StatusCode, axum::Json<KeyCreated>), ApiError> {
    let owner_id = caller.owner("issue API keys")?;
    // No body, a JSON `null` and `{}` all ask for a key that never expires.
    let lifetime = body
        .and_then(|Json(b)| b)
        .and_then(|Object(b)| b.expires_in_s)
        // Zero and below are refused by the service as zero.
        .map(|s| std::time::Duration::from_secs(u64::try_from(s).unwrap_or(0)));
    let agent_id = AgentId::from_uuid(id);
    // The repository also refuses another tenant's agent; checking here as well keeps
    // tenant isolation from resting on one adapter.
    state
        .services
        .get_agent(&caller.principal, agent_id)
        .await?;
    let (key_id, secret, expires_at) = state
        .services
        .create_expiring_agent_key(owner_id, agent_id, lifetime, &caller.audit)
        .await?;
    let created = KeyCreated {
        id: key_id.into(),
        api_key: secret.expose().to_owned(),
        expires_at,
    };
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// The agent's API keys, revoked and expired ones included, oldest first (never their
/// secrets).
#[utoipa::path(get, path = "/v1/agents/{id}/keys", tag = "agents",
    params(("id" = Uuid, Path, description = "The agent")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The keys", body = Items<KeyDto>),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 403, description = "Agents cannot list keys", body = ErrorBody),
        (status = 404, description = "Missing, deleted or another tenant's", body = ErrorBody),
    ))]
pub(crate) async fn list_keys(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Items<KeyDto>>, ApiError> {
    let owner_id = caller.owner("list API keys")?;
    let keys = state
        .services
        .agent_keys(owner_id, AgentId::from_uuid(id))
        .await?;
    Ok(axum::Json(KeyDto::list(keys)))
}

/// Revokes one API key of the agent, and every session opened with it: once answered, no
/// instance accepts either. The agent's other keys keep working. Revoking a revoked key again
/// is a `204` too.
#[utoipa::path(delete, path = "/v1/agents/{id}/keys/{key_id}", tag = "agents",
    params(
        ("id" = Uuid, Path, description = "The agent"),
        ("key_id" = Uuid, Path, description = "The key"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 403, description = "Agents cannot revoke keys", body = ErrorBody),
        (status = 404, description = "The agent or the key is missing, deleted or another tenant's", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ))]
pub(crate) async fn revoke_key(
    State(state): State<SharedState>,
    caller: Caller,
    Path((id, key_id)): Path<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    let owner_id = caller.owner("revoke API keys")?;
    state
        .services
        .revoke_agent_key(
            owner_id,
            AgentId::from_uuid(id),
            waiaas_domain::ApiKeyId::from_uuid(key_id),
            &caller.audit,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
