//! Hardening:
//! - the platform's own accounts get a namespace of their own (`system:`): money from outside
//!   was booked on `external:deposits`, the very account a payment to the destination
//!   `deposits` reaches. Every ledger account now starts `wallet:`, `external:` or `system:`;
//! - sweeps, the owner's way to move the money out of a deleted agent's (closed) wallet;
//! - the owner's decision on a held transaction is recorded (`decision`, `decided_at`), so a
//!   repeated approval replays instead of failing, backfilled from the audit trail;
//! - destinations, policy lists and names are stored NFKC-normalised, without the invisible
//!   characters the service now refuses on input (zero-width spaces and joiners, bidi
//!   controls, the BOM, …), so look-alike spellings cannot dodge a block-list and every
//!   stored value reads back;
//! - an instance cut off from Redis blocks every cache lease (`cache_leases.blocks_until`)
//!   while it is: it cannot keep Redis current, so nobody may serve from it.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The characters refused on input, as a PostgreSQL regular-expression class: controls,
/// format characters, separators, fillers, variation selectors and tags.
macro_rules! invisible {
    () => {
        r"[\u0001-\u001F\u007F-\u009F\u00AD\u034F\u061C\u06DD\u070F\u115F\u1160\u17B4\u17B5\u180B-\u180F\u200B-\u200F\u202A-\u202E\u2028\u2029\u2060-\u206F\u2800\u3164\uFE00-\uFE0F\uFEFF\uFFA0\uFFF9-\uFFFB\U000E0000-\U000E007F\U000E0100-\U000E01EF]"
    };
}

/// The stored form of a text column or value `$x`: NFKC, invisible characters removed.
macro_rules! clean {
    ($x:literal) => {
        concat!(
            "regexp_replace(normalize(",
            $x,
            ", NFKC), '",
            invisible!(),
            "', '', 'g')"
        )
    };
}

/// Rewrites one destination list of a policy into its stored form, dropping entries that
/// end up empty or with whitespace (they could never match a destination).
macro_rules! clean_list {
    ($list:literal) => {
        concat!(
            "UPDATE wallet_policies p SET version = version + 1, updated_at = now(), rules = jsonb_set(rules, '{",
            $list,
            "}', COALESCE((SELECT jsonb_agg(DISTINCT c ORDER BY c) FROM (SELECT ",
            clean!("x"),
            " AS c FROM jsonb_array_elements_text(p.rules->'",
            $list,
            "') x) q WHERE c <> '' AND c !~ '\\s'), '[]'::jsonb)) \
             WHERE jsonb_typeof(rules->'",
            $list,
            "') = 'array' AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(p.rules->'",
            $list,
            "') x WHERE x <> ",
            clean!("x"),
            ")"
        )
    };
}

macro_rules! clean_name {
    ($table:literal) => {
        concat!(
            "UPDATE ",
            $table,
            " SET name = COALESCE(NULLIF(btrim(",
            clean!("name"),
            "), ''), 'unnamed') WHERE name IS NOT NULL AND name <> ",
            clean!("name")
        )
    };
}

pub(crate) const UP: &str = concat!(
    "UPDATE ledger_entries l SET account = 'system:deposits' FROM transactions t \
     WHERE t.id = l.transaction_id AND t.kind = 'deposit' AND l.wallet_id IS NULL AND l.account = 'external:deposits';\n",
    "ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_account_namespace_check \
     CHECK (account LIKE 'wallet:%' OR account LIKE 'external:%' OR account LIKE 'system:%');\n",
    "ALTER TABLE transactions DROP CONSTRAINT transactions_kind_check;\n",
    "ALTER TABLE transactions ADD CONSTRAINT transactions_kind_check \
     CHECK (kind IN ('deposit', 'transfer', 'payment', 'sweep'));\n",
    "ALTER TABLE transactions ADD CONSTRAINT transactions_sweep_check \
     CHECK (kind <> 'sweep' OR (from_wallet_id IS NOT NULL AND to_wallet_id IS NOT NULL \
     AND from_wallet_id <> to_wallet_id AND destination IS NULL AND initiator_type = 'owner'));\n",
    "ALTER TABLE transactions ADD COLUMN decision TEXT CHECK (decision IN ('approved', 'rejected')), \
     ADD COLUMN decided_at TIMESTAMPTZ;\n",
    "UPDATE transactions t SET decision = CASE a.action WHEN 'transaction.approve' THEN 'approved' ELSE 'rejected' END, \
     decided_at = a.created_at FROM audit_logs a WHERE a.resource_type = 'transaction' \
     AND a.resource_id = t.id::text AND a.action IN ('transaction.approve', 'transaction.reject');\n",
    "UPDATE transactions SET destination = ",
    clean!("destination"),
    " WHERE destination IS NOT NULL AND destination <> ",
    clean!("destination"),
    ";\n",
    "UPDATE ledger_entries SET account = 'external:' || ",
    clean!("substr(account, 10)"),
    " WHERE account LIKE 'external:%' AND substr(account, 10) <> ",
    clean!("substr(account, 10)"),
    ";\n",
    "UPDATE transactions SET memo = regexp_replace(memo, '[\\u202A-\\u202E\\u2066-\\u2069]', '', 'g') \
     WHERE memo ~ '[\\u202A-\\u202E\\u2066-\\u2069]';\n",
    clean_list!("blocked_destinations"),
    ";\n",
    clean_list!("allowed_destinations"),
    ";\n",
    clean_name!("owners"),
    ";\n",
    clean_name!("agents"),
    ";\n",
    clean_name!("wallets"),
    ";\n",
    "ALTER TABLE cache_leases ADD COLUMN blocks_until TIMESTAMPTZ",
);

pub(crate) const DOWN: &str = r"
ALTER TABLE cache_leases DROP COLUMN blocks_until;
ALTER TABLE transactions DROP COLUMN decided_at, DROP COLUMN decision;
ALTER TABLE transactions DROP CONSTRAINT transactions_sweep_check;
ALTER TABLE transactions DROP CONSTRAINT transactions_kind_check;
ALTER TABLE transactions ADD CONSTRAINT transactions_kind_check CHECK (kind IN ('deposit', 'transfer', 'payment'));
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_account_namespace_check;
UPDATE ledger_entries SET account = 'external:deposits' WHERE account = 'system:deposits'
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
