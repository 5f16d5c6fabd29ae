//! Owners, their agents, and the credentials of both (API keys and sessions).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

pub(crate) const UP: &str = r"
CREATE TABLE owners (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    notifications_version  BIGINT NOT NULL DEFAULT 0,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX owners_created_at_idx ON owners (created_at);

CREATE TABLE agents (
    id          UUID PRIMARY KEY,
    owner_id    UUID NOT NULL REFERENCES owners (id),
    name        TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    status      TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'revoked')),
    metadata    JSONB NOT NULL DEFAULT '{}'::jsonb,
    version     BIGINT NOT NULL DEFAULT 1,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX agents_owner_id_idx ON agents (owner_id, created_at);
CREATE INDEX agents_status_idx ON agents (status);
CREATE INDEX agents_created_at_idx ON agents (created_at);
CREATE INDEX agents_metadata_gin ON agents USING GIN (metadata jsonb_path_ops);

CREATE TABLE api_keys (
    id              UUID PRIMARY KEY,
    key_hash        TEXT NOT NULL UNIQUE,
    principal_type  TEXT NOT NULL CHECK (principal_type IN ('owner', 'agent')),
    owner_id        UUID NOT NULL REFERENCES owners (id),
    agent_id        UUID REFERENCES agents (id),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at      TIMESTAMPTZ,
    CHECK ((principal_type = 'agent') = (agent_id IS NOT NULL))
);
CREATE INDEX api_keys_owner_id_idx ON api_keys (owner_id);
CREATE INDEX api_keys_agent_id_idx ON api_keys (agent_id);
CREATE INDEX api_keys_created_at_idx ON api_keys (created_at);

CREATE TABLE sessions (
    id              UUID PRIMARY KEY,
    token_hash      TEXT NOT NULL UNIQUE,
    principal_type  TEXT NOT NULL CHECK (principal_type IN ('owner', 'agent')),
    owner_id        UUID NOT NULL REFERENCES owners (id),
    agent_id        UUID REFERENCES agents (id),
    expires_at      TIMESTAMPTZ NOT NULL,
    revoked_at      TIMESTAMPTZ,
    version         BIGINT NOT NULL DEFAULT 1,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((principal_type = 'agent') = (agent_id IS NOT NULL))
);
CREATE INDEX sessions_owner_id_idx ON sessions (owner_id);
CREATE INDEX sessions_agent_id_idx ON sessions (agent_id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
CREATE INDEX sessions_created_at_idx ON sessions (created_at)
";

pub(crate) const DOWN: &str = r"
DROP TABLE sessions;
DROP TABLE api_keys;
DROP TABLE agents;
DROP TABLE owners
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run(manager, UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run(manager, DOWN).await
    }
}
