//! Events of everything else that changes: agents (created, updated, suspended, activated,
//! deleted), API keys (created, revoked), sessions (revoked), wallet policies (set) and
//! mandates (created, revoked) write their `events` row by trigger, in the change's own
//! transaction, as transactions do; budgets write theirs from the statement that replaces them
//! (one event per change of a whole budget, not one per asset row). An event that is not about
//! a transaction has no `transaction_id`; its `subject` names what it is about and its payload
//! is that record as the API shows it (never a key's or a session's hash).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

pub(crate) const UP: &str = r"
ALTER TABLE events ALTER COLUMN transaction_id DROP NOT NULL;
ALTER TABLE events ADD COLUMN subject TEXT NOT NULL DEFAULT 'transaction'
    CHECK (subject IN ('transaction', 'agent', 'api_key', 'session', 'policy', 'budget', 'mandate'));
ALTER TABLE events ADD CONSTRAINT events_transaction_subject_check
    CHECK ((subject = 'transaction') = (transaction_id IS NOT NULL));
ALTER TABLE webhook_deliveries ALTER COLUMN wallet_id DROP NOT NULL;
ALTER TABLE webhook_deliveries ALTER COLUMN transaction_id DROP NOT NULL;
ALTER TABLE notifications ALTER COLUMN wallet_id DROP NOT NULL;
ALTER TABLE notifications ALTER COLUMN transaction_id DROP NOT NULL
";

/// The functions, each run on its own (their bodies hold `;`).
pub(crate) const FUNCTIONS: [&str; 7] = [
    r#"
CREATE FUNCTION event_time(t TIMESTAMPTZ) RETURNS TEXT LANGUAGE sql IMMUTABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$
"#,
    r"
CREATE FUNCTION insert_event(kind TEXT, subject TEXT, owner UUID, wallet UUID, payload JSONB,
                             at TIMESTAMPTZ) RETURNS VOID LANGUAGE sql AS $$
    INSERT INTO events (type, subject, owner_id, from_wallet_id, payload, created_at)
    VALUES (kind, subject, owner, wallet, payload, at)
$$
",
    r"
CREATE FUNCTION agent_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM insert_event(
        CASE WHEN TG_OP = 'INSERT' THEN 'agent.created'
             WHEN NEW.status IS DISTINCT FROM OLD.status THEN
                 CASE NEW.status WHEN 'revoked' THEN 'agent.deleted'
                                 WHEN 'suspended' THEN 'agent.suspended'
                                 ELSE 'agent.activated' END
             ELSE 'agent.updated' END,
        'agent', NEW.owner_id, NULL,
        jsonb_build_object('id', NEW.id, 'owner_id', NEW.owner_id, 'name', NEW.name,
                           'status', NEW.status, 'metadata', NEW.metadata,
                           'version', NEW.version, 'created_at', event_time(NEW.created_at),
                           'updated_at', event_time(NEW.updated_at)),
        NEW.updated_at);
    RETURN NULL;
END
$$
",
    r"
CREATE FUNCTION api_key_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM insert_event(
        CASE WHEN TG_OP = 'INSERT' THEN 'api_key.created' ELSE 'api_key.revoked' END,
        'api_key', NEW.owner_id, NULL,
        jsonb_build_object('id', NEW.id, 'principal_type', NEW.principal_type,
                           'owner_id', NEW.owner_id, 'agent_id', NEW.agent_id,
                           'created_at', event_time(NEW.created_at),
                           'expires_at', event_time(NEW.expires_at),
                           'revoked_at', event_time(NEW.revoked_at)),
        COALESCE(NEW.revoked_at, NEW.created_at));
    RETURN NULL;
END
$$
",
    r"
CREATE FUNCTION session_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM insert_event('session.revoked', 'session', NEW.owner_id, NULL,
        jsonb_build_object('id', NEW.id, 'principal_type', NEW.principal_type,
                           'owner_id', NEW.owner_id, 'agent_id', NEW.agent_id,
                           'created_at', event_time(NEW.created_at),
                           'expires_at', event_time(NEW.expires_at),
                           'revoked_at', event_time(NEW.revoked_at)),
        NEW.revoked_at);
    RETURN NULL;
END
$$
",
    r"
CREATE FUNCTION policy_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM insert_event('policy.updated', 'policy',
        (SELECT owner_id FROM wallets WHERE id = NEW.wallet_id), NEW.wallet_id,
        jsonb_build_object('wallet_id', NEW.wallet_id, 'rules', NEW.rules,
                           'version', NEW.version, 'updated_at', event_time(NEW.updated_at)),
        NEW.updated_at);
    RETURN NULL;
END
$$
",
    r"
CREATE FUNCTION mandate_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM insert_event(
        CASE WHEN TG_OP = 'INSERT' THEN 'mandate.created' ELSE 'mandate.revoked' END,
        'mandate', NEW.owner_id, NEW.wallet_id,
        jsonb_build_object('id', NEW.id, 'wallet_id', NEW.wallet_id, 'asset', NEW.asset,
                           'max_amount', NEW.max_amount, 'total_amount', NEW.total_amount,
                           'remaining', NEW.remaining, 'max_uses', NEW.max_uses,
                           'uses_left', NEW.uses_left, 'to_wallet_id', NEW.to_wallet_id,
                           'destination', NEW.destination,
                           'expires_at', event_time(NEW.expires_at),
                           'revoked_at', event_time(NEW.revoked_at),
                           'created_at', event_time(NEW.created_at)),
        NEW.updated_at);
    RETURN NULL;
END
$$
",
];

pub(crate) const TRIGGERS: &str = r"
CREATE TRIGGER agents_event AFTER INSERT OR UPDATE ON agents
    FOR EACH ROW EXECUTE FUNCTION agent_event();
CREATE TRIGGER api_keys_insert_event AFTER INSERT ON api_keys
    FOR EACH ROW EXECUTE FUNCTION api_key_event();
CREATE TRIGGER api_keys_revoke_event AFTER UPDATE OF revoked_at ON api_keys
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
    EXECUTE FUNCTION api_key_event();
CREATE TRIGGER sessions_revoke_event AFTER UPDATE OF revoked_at ON sessions
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
    EXECUTE FUNCTION session_event();
CREATE TRIGGER wallet_policies_event AFTER INSERT OR UPDATE ON wallet_policies
    FOR EACH ROW EXECUTE FUNCTION policy_event();
CREATE TRIGGER mandates_insert_event AFTER INSERT ON mandates
    FOR EACH ROW EXECUTE FUNCTION mandate_event();
CREATE TRIGGER mandates_revoke_event AFTER UPDATE OF revoked_at ON mandates
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
    EXECUTE FUNCTION mandate_event()
";

pub(crate) const DOWN: &str = r"
DROP TRIGGER mandates_revoke_event ON mandates;
DROP TRIGGER mandates_insert_event ON mandates;
DROP TRIGGER wallet_policies_event ON wallet_policies;
DROP TRIGGER sessions_revoke_event ON sessions;
DROP TRIGGER api_keys_revoke_event ON api_keys;
DROP TRIGGER api_keys_insert_event ON api_keys;
DROP TRIGGER agents_event ON agents;
DROP FUNCTION mandate_event();
DROP FUNCTION policy_event();
DROP FUNCTION session_event();
DROP FUNCTION api_key_event();
DROP FUNCTION agent_event();
DROP FUNCTION insert_event(TEXT, TEXT, UUID, UUID, JSONB, TIMESTAMPTZ);
DROP FUNCTION event_time(TIMESTAMPTZ);
DELETE FROM notifications WHERE wallet_id IS NULL OR transaction_id IS NULL;
ALTER TABLE notifications ALTER COLUMN transaction_id SET NOT NULL;
ALTER TABLE notifications ALTER COLUMN wallet_id SET NOT NULL;
DELETE FROM webhook_deliveries WHERE wallet_id IS NULL OR transaction_id IS NULL;
ALTER TABLE webhook_deliveries ALTER COLUMN transaction_id SET NOT NULL;
ALTER TABLE webhook_deliveries ALTER COLUMN wallet_id SET NOT NULL;
DELETE FROM events WHERE subject <> 'transaction';
ALTER TABLE events DROP CONSTRAINT events_transaction_subject_check;
ALTER TABLE events DROP COLUMN subject;
ALTER TABLE events ALTER COLUMN transaction_id SET NOT NULL
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run(manager, UP).await?;
        for function in FUNCTIONS {
            manager
                .get_connection()
                .execute_unprepared(function)
                .await?;
        }
        crate::run(manager, TRIGGERS).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run(manager, DOWN).await
    }
}
