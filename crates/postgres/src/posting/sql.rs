//! The SQL statements of the posting path, in the order a transfer issues them. They are
//! public so the benchmark can write a `pgbench` script from exactly these statements.

/// Locks the wallets of a posting in ascending id order (so two postings touching the same
/// wallets can never deadlock) and reads their state and their agents' status, together
/// with the transaction the request's idempotency key already produced, if any: a replay is
/// answered before anything that depends on the current state is checked. `expired_held`
/// tells whether holds of the wallet are past their expiry but not yet released (served by
/// the partial index of open holds; the posting releases them first).
/// `$1`: `uuid[]` of wallet ids, `$2`: the principal, `$3`: the idempotency key (or null),
/// `$4`: the time of the request.
pub const LOCK_WALLETS: &str = "SELECT w.id, w.agent_id, w.owner_id, w.asset, w.balance, w.held, w.version, a.status AS agent_status, \
(SELECT t.id FROM transactions t WHERE t.initiator_id = $2 AND t.idempotency_key = $3) AS prior_id, \
EXISTS (SELECT 1 FROM transactions h WHERE h.status = 'held' AND h.expires_at <= $4 AND h.from_wallet_id = w.id) AS expired_held \
FROM wallets w JOIN agents a ON a.id = w.agent_id \
WHERE w.id = ANY($1) ORDER BY w.id FOR NO KEY UPDATE OF w";

/// Locks the budgets above the paying wallet, the agent's first, then the owner's (after the
/// wallets: one global order), and reads them; no row for a level without a budget in the
/// asset. `$1`: agent, `$2`: owner, `$3`: asset.
pub const LOCK_BUDGETS: &str = "SELECT 'agent' AS level, max_per_transaction, daily_limit, monthly_limit \
FROM (SELECT * FROM agent_budgets WHERE agent_id = $1 AND asset = $3 FOR UPDATE) a \
UNION ALL SELECT 'owner', max_per_transaction, daily_limit, monthly_limit \
FROM (SELECT * FROM owner_budgets WHERE owner_id = $2 AND asset = $3 FOR UPDATE) o";

/// Reads the paying wallet's policy, today's and this month's spend, under the wallet's
/// lock: one row, nulls where there is no policy or no spend yet. When a budget above the
/// wallet exists (read under its lock just before), the spend under it too: the sum of the
/// daily spend of every wallet of the agent (or owner) in the asset, today and this month.
/// `$1`: wallet id, `$2`: the UTC day, `$3`: the first day of its month, `$4`: the agent
/// (null without an agent budget), `$5`: the owner (null without an owner budget), `$6`:
/// the asset.
pub const POLICY_AND_SPEND: &str = "SELECT p.rules, p.version AS policy_version, s.amount AS spent_today, s.count AS count_today, \
(SELECT LEAST(COALESCE(sum(m.amount), 0), 9223372036854775807)::bigint FROM wallet_daily_spend m WHERE m.wallet_id = $1 AND m.day BETWEEN $3 AND $2) AS spent_month, \
CASE WHEN $4::uuid IS NOT NULL THEN (SELECT LEAST(COALESCE(sum(d.amount), 0), 9223372036854775807)::bigint FROM wallet_daily_spend d JOIN wallets w ON w.id = d.wallet_id \
WHERE w.agent_id = $4 AND w.asset = $6 AND d.day = $2) END AS agent_today, \
CASE WHEN $4::uuid IS NOT NULL THEN (SELECT LEAST(COALESCE(sum(d.amount), 0), 9223372036854775807)::bigint FROM wallet_daily_spend d JOIN wallets w ON w.id = d.wallet_id \
WHERE w.agent_id = $4 AND w.asset = $6 AND d.day BETWEEN $3 AND $2) END AS agent_month, \
CASE WHEN $5::uuid IS NOT NULL THEN (SELECT LEAST(COALESCE(sum(d.amount), 0), 9223372036854775807)::bigint FROM wallet_daily_spend d JOIN wallets w ON w.id = d.wallet_id \
WHERE w.owner_id = $5 AND w.asset = $6 AND d.day = $2) END AS owner_today, \
CASE WHEN $5::uuid IS NOT NULL THEN (SELECT LEAST(COALESCE(sum(d.amount), 0), 9223372036854775807)::bigint FROM wallet_daily_spend d JOIN wallets w ON w.id = d.wallet_id \
WHERE w.owner_id = $5 AND w.asset = $6 AND d.day BETWEEN $3 AND $2) END AS owner_month \
FROM (SELECT 1) AS one \
LEFT JOIN wallet_policies p ON p.wallet_id = $1 \
LEFT JOIN wallet_daily_spend s ON s.wallet_id = $1 AND s.day = $2";

/// Counts the wallet's outgoing transactions of the rolling hour: completed transfers and
/// payments that spend no hold, and holds placed (a hold counts from the moment it is held,
/// and its capture does not count again); issued only when the hourly rule is set. Bounded
/// by that rule, served by partial indexes. `$1`: wallet id, `$2`: one hour before now.
pub const HOURLY_COUNT: &str = "SELECT (SELECT count(*) FROM transactions \
WHERE from_wallet_id = $1 AND posted_at > $2 AND kind IN ('transfer', 'payment') AND hold_id IS NULL) \
+ (SELECT count(*) FROM transactions WHERE from_wallet_id = $1 AND held_at > $2) AS n";

/// Inserts the transaction; with an idempotency key already used by the same principal, it
/// inserts nothing and returns no row. `$1`…`$28` in column order (`$23`…`$25`: a hold's
/// expiry and time held, a capture's hold; `$26` the whole budget as JSON, `$27` the level
/// that denied, `$28` the approval deadline, `$29` the mandate that pre-approved it).
pub const INSERT_TRANSACTION: &str = "INSERT INTO transactions (id, kind, status, asset, amount, from_wallet_id, to_wallet_id, destination, memo, metadata, \
owner_id, initiator_type, initiator_id, idempotency_key, request_hash, decision_rule, reason, \
budget_daily_remaining, budget_hourly_remaining, created_at, updated_at, posted_at, expires_at, held_at, hold_id, \
budget, decision_level, approval_deadline, mandate_id) \
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29) \
ON CONFLICT (initiator_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING \
RETURNING *";

/// Reads the transaction an idempotency key was first used for.
/// `$1`: the principal's id, `$2`: the key.
pub const FIND_BY_IDEMPOTENCY_KEY: &str =
    "SELECT * FROM transactions WHERE initiator_id = $1 AND idempotency_key = $2";

/// Writes everything a posted transaction changes, in one round trip: its ledger entries
/// (which sum to zero), the daily spend of the paying wallet (when `$11 > 0`), the audit row,
/// and the new balances and versions, returned.
/// `$1` transaction, `$2` asset, `$3` time, `$4` `text[]` entry wallets (empty for the outside
/// world), `$5` `text[]` accounts, `$6` `bigint[]` signed amounts, `$7` `uuid[]` wallets,
/// `$8` `bigint[]` balance deltas, `$9` paying wallet, `$10` UTC day, `$11` amount spent,
/// `$12`…`$22` the audit row (id, owner, actor type, actor id, action, resource type, resource
/// id, old value, new value, request id, client address as text).
pub const POST_WRITES: &str = "WITH ledger AS (\
INSERT INTO ledger_entries (transaction_id, wallet_id, account, asset, amount, created_at) \
SELECT $1, NULLIF(e.wallet_id, '')::uuid, e.account, $2, e.amount, $3 \
FROM unnest($4::text[], $5::text[], $6::bigint[]) AS e(wallet_id, account, amount)), \
spend AS (\
INSERT INTO wallet_daily_spend (wallet_id, day, amount, count) SELECT $9::uuid, $10::date, $11::bigint, 1 WHERE $11::bigint > 0 \
ON CONFLICT (wallet_id, day) DO UPDATE SET \
amount = LEAST(wallet_daily_spend.amount::numeric + EXCLUDED.amount, 9223372036854775807)::bigint, \
count = wallet_daily_spend.count + 1), \
audit AS (\
INSERT INTO audit_logs (id, owner_id, actor_type, actor_id, action, resource_type, resource_id, \
old_value, new_value, request_id, ip, created_at) \
VALUES ($12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22::inet, $3)) \
UPDATE wallets AS w SET balance = w.balance + d.delta, version = w.version + 1, updated_at = $3 \
FROM unnest($7::uuid[], $8::bigint[]) AS d(id, delta) \
WHERE w.id = d.id \
RETURNING w.id, w.asset, w.balance, w.held, w.version";

/// Appends an audit row. `$1`…`$12` in column order; `$11` is the client address as text.
pub const INSERT_AUDIT: &str = "INSERT INTO audit_logs (id, owner_id, actor_type, actor_id, action, resource_type, resource_id, \
old_value, new_value, request_id, ip, created_at) \
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::inet, $12)";

/// Tells an owner about a held or denied transaction and bumps the version of the owner's
/// notifications (under the owner's row lock, so versions follow commit order); returns it.
/// `$1` id, `$2` owner, `$3` kind, `$4` wallet, `$5` transaction, `$6` message, `$7` time.
pub const INSERT_NOTIFICATION: &str = "WITH v AS (UPDATE owners SET notifications_version = notifications_version + 1 \
WHERE id = $2 RETURNING notifications_version) \
INSERT INTO notifications (id, owner_id, kind, wallet_id, transaction_id, message, created_at) \
VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING (SELECT notifications_version FROM v) AS version";

/// Reads a transaction without locking it: which wallets to lock before it.
/// `$1`: transaction id.
pub const FIND_TRANSACTION: &str = "SELECT * FROM transactions WHERE id = $1";

/// Locks a transaction (always after its wallets). `$1`: transaction id.
pub const LOCK_TRANSACTION: &str = "SELECT * FROM transactions WHERE id = $1 FOR UPDATE";

/// Records the outcome of a decision on a pending transaction.
/// `$1` id, `$2` status, `$3` rule, `$4` reason, `$5` daily budget, `$6` hourly budget,
/// `$7` time, `$8` posted-at (null unless completed), `$9` the owner's decision
/// (`approved` or `rejected`), `$10` held-at (a hold approved and held), `$11` captured (0
/// for a hold that ended without money moving), `$12` the whole budget as JSON, `$13` the
/// level that denied.
pub const SETTLE_TRANSACTION: &str = "UPDATE transactions SET status = $2, decision_rule = $3, reason = $4, \
budget_daily_remaining = $5, budget_hourly_remaining = $6, updated_at = $7, posted_at = $8, \
decision = $9, decided_at = $7, held_at = $10, captured = $11, budget = $12, decision_level = $13 \
WHERE id = $1 RETURNING *";

/// The current balances of wallets, unlocked: what a replay writes through to the cache.
/// `$1`: `uuid[]` of wallet ids.
pub const BALANCES: &str =
    "SELECT id, asset, balance, held, version FROM wallets WHERE id = ANY($1)";

/// Reserves a hold's amount: the wallet's `held` and version go up (returned), and the
/// amount and one transaction count in the day's spend. `$1` wallet, `$2` UTC day, `$3`
/// amount, `$4` time.
pub const RESERVE_HOLD: &str = "WITH spend AS (\
INSERT INTO wallet_daily_spend (wallet_id, day, amount, count) VALUES ($1, $2, $3, 1) \
ON CONFLICT (wallet_id, day) DO UPDATE SET \
amount = LEAST(wallet_daily_spend.amount::numeric + EXCLUDED.amount, 9223372036854775807)::bigint, \
count = wallet_daily_spend.count + 1) \
UPDATE wallets SET held = held + $3, version = version + 1, updated_at = $4 WHERE id = $1 \
RETURNING id, asset, balance, held, version";

/// Ends one held hold: its status and captured amount are set, its whole amount leaves the
/// wallet's `held`, and what was not captured goes back to the spend of the day it was held.
/// Returns the hold with the wallet's new `held` and version. Matches nothing unless the hold
/// is still `held`. `$1` hold, `$2` status, `$3` captured, `$4` time, `$5` 1 to bump the
/// wallet's version (0 when the capture's ledger write bumps it).
pub const RELEASE_HOLD: &str = "WITH h AS (\
UPDATE transactions SET status = $2, captured = $3, updated_at = $4 WHERE id = $1 AND status = 'held' RETURNING *), \
spend AS (\
UPDATE wallet_daily_spend s SET amount = GREATEST(s.amount - (h.amount - h.captured), 0) FROM h \
WHERE s.wallet_id = h.from_wallet_id AND s.day = (h.held_at AT TIME ZONE 'UTC')::date AND h.amount > h.captured), \
w AS (\
UPDATE wallets SET held = wallets.held - h.amount, version = wallets.version + $5, updated_at = $4 FROM h \
WHERE wallets.id = h.from_wallet_id RETURNING wallets.held, wallets.version) \
SELECT h.*, w.held AS wallet_held, w.version AS wallet_version FROM h, w";

/// Releases every hold of a wallet past its expiry: `expired`, nothing captured, the amounts
/// out of the wallet's `held` (version bumped) and back to the spend of the days they were
/// held. Returns the released holds with the wallet's new `held` and version. Runs under the
/// wallet's lock. `$1` wallet, `$2` time.
pub const RELEASE_EXPIRED: &str = "WITH h AS (\
UPDATE transactions SET status = 'expired', captured = 0, updated_at = $2 \
WHERE from_wallet_id = $1 AND status = 'held' AND expires_at <= $2 RETURNING *), \
d AS (SELECT (held_at AT TIME ZONE 'UTC')::date AS day, sum(amount) AS total FROM h GROUP BY 1), \
spend AS (\
UPDATE wallet_daily_spend s SET amount = GREATEST(s.amount - d.total, 0)::bigint FROM d \
WHERE s.wallet_id = $1 AND s.day = d.day), \
w AS (\
UPDATE wallets SET held = held - (SELECT sum(amount) FROM h)::bigint, version = version + 1, updated_at = $2 \
WHERE id = $1 AND EXISTS (SELECT 1 FROM h) RETURNING held, version) \
SELECT h.*, w.held AS wallet_held, w.version AS wallet_version FROM h, w";

/// The transactions that waited for approval past their deadline, the longest first.
/// `$1` time, `$2` how many.
pub const EXPIRED_APPROVALS: &str = "SELECT id, from_wallet_id FROM transactions \
WHERE status = 'pending_approval' AND approval_deadline <= $1 ORDER BY approval_deadline LIMIT $2";

/// Expires a transaction still waiting for approval past its deadline (a hold records that
/// nothing of it was captured). `$1` id, `$2` time.
pub const EXPIRE_APPROVAL: &str = "UPDATE transactions SET status = 'expired', \
captured = CASE WHEN kind = 'hold' THEN 0 END, \
reason = 'it waited for approval longer than the approval timeout', updated_at = $2 \
WHERE id = $1 AND status = 'pending_approval' AND approval_deadline <= $2 RETURNING *";

/// Voids a hold still waiting for approval: nothing was reserved, nothing is released.
/// `$1` hold, `$2` time.
pub const VOID_PENDING_HOLD: &str = "UPDATE transactions SET status = 'voided', captured = 0, updated_at = $2 \
WHERE id = $1 AND status = 'pending_approval' RETURNING *";

/// The wallets with holds past their expiry, the longest expired first.
/// `$1` time, `$2` how many holds to look at.
pub const EXPIRED_HOLD_WALLETS: &str = "SELECT DISTINCT from_wallet_id FROM (\
SELECT from_wallet_id FROM transactions WHERE status = 'held' AND expires_at <= $1 \
ORDER BY expires_at LIMIT $2) e";

/// A batch: the transactions the idempotency keys of its postings already produced, read
/// after the wallets are locked (so a first attempt committed while the batch waited is
/// seen). `$1` `uuid[]` principals, `$2` `text[]` keys, pairwise.
pub const BATCH_PRIOR_KEYS: &str = "SELECT t.* FROM unnest($1::uuid[], $2::text[]) AS k(initiator_id, idempotency_key) \
JOIN transactions t ON t.initiator_id = k.initiator_id AND t.idempotency_key = k.idempotency_key";

/// A batch: locks the budgets above its paying wallets, every agent's budget (in agent and
/// asset order) before every owner's (in owner and asset order), after the wallets: the
/// order a single posting takes them in. No row for a level without a budget in the asset.
/// `$1` `uuid[]` agents, `$2` `text[]` their assets, `$3` `uuid[]` owners, `$4` `text[]`
/// their assets.
pub const BATCH_LOCK_BUDGETS: &str = "SELECT 'agent' AS level, a.agent_id AS principal, a.asset, a.max_per_transaction, a.daily_limit, a.monthly_limit \
FROM (SELECT b.* FROM agent_budgets b JOIN unnest($1::uuid[], $2::text[]) AS q(principal, asset) \
ON b.agent_id = q.principal AND b.asset = q.asset ORDER BY b.agent_id, b.asset FOR UPDATE OF b) a \
UNION ALL SELECT 'owner', o.owner_id, o.asset, o.max_per_transaction, o.daily_limit, o.monthly_limit \
FROM (SELECT b.* FROM owner_budgets b JOIN unnest($3::uuid[], $4::text[]) AS q(principal, asset) \
ON b.owner_id = q.principal AND b.asset = q.asset ORDER BY b.owner_id, b.asset FOR UPDATE OF b) o";

/// A batch: the policy, today's spend and count and this month's spend of every paying
/// wallet, under their locks; one row per wallet, nulls where there is no policy or spend.
/// `$1` `uuid[]` wallets, `$2` the UTC day, `$3` the first day of its month.
pub const BATCH_POLICY_AND_SPEND: &str = "SELECT q.id AS wallet_id, p.rules, s.amount AS spent_today, s.count AS count_today, \
(SELECT LEAST(COALESCE(sum(m.amount), 0), 9223372036854775807)::bigint FROM wallet_daily_spend m \
WHERE m.wallet_id = q.id AND m.day BETWEEN $3 AND $2) AS spent_month \
FROM unnest($1::uuid[]) AS q(id) \
LEFT JOIN wallet_policies p ON p.wallet_id = q.id \
LEFT JOIN wallet_daily_spend s ON s.wallet_id = q.id AND s.day = $2";

/// A batch: what was spent under each budget it locked, today and this month, over every
/// wallet of the agent (or owner) in the asset. `$1`…`$4` as in [`BATCH_LOCK_BUDGETS`] (only
/// the budgets that exist), `$5` the UTC day, `$6` the first day of its month.
pub const BATCH_LEVEL_SPEND: &str = "SELECT 'agent' AS level, q.principal, q.asset, \
(SELECT LEAST(COALESCE(sum(d.amount), 0), 9223372036854775807)::bigint FROM wallet_daily_spend d JOIN wallets w ON w.id = d.wallet_id \
WHERE w.agent_id = q.principal AND w.asset = q.asset AND d.day = $5) AS today, \
(SELECT LEAST(COALESCE(sum(d.amount), 0), 9223372036854775807)::bigint FROM wallet_daily_spend d JOIN wallets w ON w.id = d.wallet_id \
WHERE w.agent_id = q.principal AND w.asset = q.asset AND d.day BETWEEN $6 AND $5) AS month \
FROM unnest($1::uuid[], $2::text[]) AS q(principal, asset) \
UNION ALL SELECT 'owner', q.principal, q.asset, \
(SELECT LEAST(COALESCE(sum(d.amount), 0), 9223372036854775807)::bigint FROM wallet_daily_spend d JOIN wallets w ON w.id = d.wallet_id \
WHERE w.owner_id = q.principal AND w.asset = q.asset AND d.day = $5), \
(SELECT LEAST(COALESCE(sum(d.amount), 0), 9223372036854775807)::bigint FROM wallet_daily_spend d JOIN wallets w ON w.id = d.wallet_id \
WHERE w.owner_id = q.principal AND w.asset = q.asset AND d.day BETWEEN $6 AND $5) \
FROM unnest($3::uuid[], $4::text[]) AS q(principal, asset)";

/// A batch: inserts every transaction it decided, from a JSON array of rows keyed by column
/// name; a row whose idempotency key its principal already used is not inserted (and not
/// returned). `$1` the rows.
pub const BATCH_INSERT_TRANSACTIONS: &str = "INSERT INTO transactions (id, kind, status, asset, amount, from_wallet_id, to_wallet_id, destination, memo, metadata, \
owner_id, initiator_type, initiator_id, idempotency_key, request_hash, decision_rule, reason, \
budget_daily_remaining, budget_hourly_remaining, created_at, updated_at, posted_at, expires_at, held_at, hold_id, \
budget, decision_level, approval_deadline, mandate_id) \
SELECT id, kind, status, asset, amount, from_wallet_id, to_wallet_id, destination, memo, metadata, \
owner_id, initiator_type, initiator_id, idempotency_key, request_hash, decision_rule, reason, \
budget_daily_remaining, budget_hourly_remaining, created_at, updated_at, posted_at, expires_at, held_at, hold_id, \
budget, decision_level, approval_deadline, mandate_id \
FROM jsonb_populate_recordset(NULL::transactions, $1::jsonb) \
ON CONFLICT (initiator_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING \
RETURNING *";

/// A batch: everything its postings write besides their transactions, in one round trip:
/// the ledger entries, the daily spend of each paying wallet (one row per wallet and day,
/// the batch's amounts and counts summed), the audit rows, and each wallet's balance moved
/// (and what it holds) by the sum of its postings and its version by their number,
/// returned. `$1` entries,
/// `$2` spend, `$3` audit rows, `$4` wallets (JSON arrays of rows), `$5` the time.
pub const BATCH_WRITES: &str = "WITH ledger AS (\
INSERT INTO ledger_entries (transaction_id, wallet_id, account, asset, amount, created_at) \
SELECT e.transaction_id, e.wallet_id, e.account, e.asset, e.amount, e.created_at \
FROM jsonb_to_recordset($1::jsonb) AS e(transaction_id uuid, wallet_id uuid, account text, asset text, amount bigint, created_at timestamptz)), \
spend AS (\
INSERT INTO wallet_daily_spend (wallet_id, day, amount, count) \
SELECT s.wallet_id, s.day, s.amount, s.count FROM jsonb_to_recordset($2::jsonb) AS s(wallet_id uuid, day date, amount bigint, count integer) \
ON CONFLICT (wallet_id, day) DO UPDATE SET \
amount = LEAST(wallet_daily_spend.amount::numeric + EXCLUDED.amount, 9223372036854775807)::bigint, \
count = wallet_daily_spend.count + EXCLUDED.count), \
audit AS (\
INSERT INTO audit_logs (id, owner_id, actor_type, actor_id, action, resource_type, resource_id, \
old_value, new_value, request_id, ip, created_at) \
SELECT a.id, a.owner_id, a.actor_type, a.actor_id, a.action, a.resource_type, a.resource_id, \
a.old_value, a.new_value, a.request_id, a.ip::inet, a.created_at FROM jsonb_to_recordset($3::jsonb) AS a(id uuid, owner_id uuid, \
actor_type text, actor_id uuid, action text, resource_type text, resource_id text, old_value jsonb, new_value jsonb, \
request_id text, ip text, created_at timestamptz)) \
UPDATE wallets AS w SET balance = w.balance + d.delta, held = w.held + d.held, version = w.version + d.bumps, updated_at = $5 \
FROM jsonb_to_recordset($4::jsonb) AS d(id uuid, delta bigint, held bigint, bumps bigint) \
WHERE w.id = d.id \
RETURNING w.id, w.asset, w.balance, w.held, w.version";

/// The statements one completed wallet-to-wallet transfer issues, in order, between
/// `BEGIN` and `COMMIT` (the hourly count only when that rule is set).
pub const TRANSFER_STATEMENTS: [&str; 5] = [
    LOCK_WALLETS,
    LOCK_BUDGETS,
    POLICY_AND_SPEND,
    INSERT_TRANSACTION,
    POST_WRITES,
];
