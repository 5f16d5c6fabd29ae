-- The benchmark's per-transfer ceiling: one whole wallet-to-wallet transfer in one call, so
-- one round trip and no client work between statements. It writes what the adapter writes
-- for a completed transfer (`waiaas_postgres::posting::sql`: LOCK_WALLETS, LOCK_BUDGETS,
-- POLICY_AND_SPEND, INSERT_TRANSACTION, POST_WRITES) and reads what the adapter reads,
-- minus the policy engine (bench wallets have no policy and no budget). Created in bench
-- databases only; never part of the schema.
CREATE OR REPLACE FUNCTION waiaas_bench_transfer(
    p_from uuid,
    p_to uuid,
    p_amount bigint,
    p_owner uuid,
    p_agent uuid,
    p_key text,
    p_audit jsonb
) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz := now();
    v_day date := (now() AT TIME ZONE 'UTC')::date;
    v_month date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
    v_tx uuid := gen_random_uuid();
    v_locked int := 0;
    v_available bigint;
    v_prior uuid;
    v_rules jsonb;
    v_spent_today bigint;
    v_count_today int;
    v_spent_month bigint;
    w record;
BEGIN
    -- LOCK_WALLETS: both wallets in id order (no deadlock), their agents' status, holds past
    -- their expiry, and the transaction the idempotency key already produced.
    FOR w IN
        SELECT x.id, x.balance, x.held, a.status AS agent_status,
               EXISTS (SELECT 1 FROM transactions h
                       WHERE h.status = 'held' AND h.expires_at <= v_now AND h.from_wallet_id = x.id)
                   AS expired_held
        FROM wallets x JOIN agents a ON a.id = x.agent_id
        WHERE x.id = ANY (ARRAY[p_from, p_to])
        ORDER BY x.id
        FOR NO KEY UPDATE OF x
    LOOP
        v_locked := v_locked + 1;
        IF w.agent_status <> 'active' THEN
            RAISE EXCEPTION 'agent of wallet % is %', w.id, w.agent_status;
        END IF;
        IF w.id = p_from THEN
            v_available := w.balance - w.held;
        END IF;
    END LOOP;
    IF v_locked <> 2 THEN
        RAISE EXCEPTION 'wallet not found';
    END IF;
    SELECT t.id INTO v_prior FROM transactions t
    WHERE t.initiator_id = p_agent AND t.idempotency_key = p_key;
    IF v_prior IS NOT NULL THEN
        RETURN v_prior;
    END IF;

    -- LOCK_BUDGETS (bench principals have none: no row, as for the adapter).
    PERFORM 1 FROM agent_budgets WHERE agent_id = p_agent AND asset = 'USD' FOR UPDATE;
    PERFORM 1 FROM owner_budgets WHERE owner_id = p_owner AND asset = 'USD' FOR UPDATE;

    -- POLICY_AND_SPEND: the paying wallet's policy, today's and this month's spend.
    SELECT p.rules, s.amount, s.count,
           (SELECT COALESCE(sum(m.amount), 0)::bigint FROM wallet_daily_spend m
            WHERE m.wallet_id = p_from AND m.day BETWEEN v_month AND v_day)
    INTO v_rules, v_spent_today, v_count_today, v_spent_month
    FROM (SELECT 1) AS one
    LEFT JOIN wallet_policies p ON p.wallet_id = p_from
    LEFT JOIN wallet_daily_spend s ON s.wallet_id = p_from AND s.day = v_day;
    IF v_rules IS NOT NULL THEN
        RAISE EXCEPTION 'bench wallets have no policy';
    END IF;
    IF v_available < p_amount THEN
        RAISE EXCEPTION 'insufficient funds: % available, % asked', v_available, p_amount;
    END IF;

    -- INSERT_TRANSACTION (the same columns; the events trigger fires as for the adapter).
    INSERT INTO transactions (id, kind, status, asset, amount, from_wallet_id, to_wallet_id,
        destination, memo, metadata, owner_id, initiator_type, initiator_id, idempotency_key,
        request_hash, decision_rule, reason, budget_daily_remaining, budget_hourly_remaining,
        created_at, updated_at, posted_at, expires_at, held_at, hold_id, budget,
        decision_level, approval_deadline, mandate_id)
    VALUES (v_tx, 'transfer', 'completed', 'USD', p_amount, p_from, p_to,
        NULL, NULL, '{}'::jsonb, p_owner, 'agent', p_agent, p_key,
        repeat('0', 64), NULL, NULL, NULL, NULL,
        v_now, v_now, v_now, NULL, NULL, NULL, '{}'::jsonb,
        NULL, NULL, NULL)
    ON CONFLICT (initiator_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING;
    IF NOT FOUND THEN
        SELECT t.id INTO v_prior FROM transactions t
        WHERE t.initiator_id = p_agent AND t.idempotency_key = p_key;
        RETURN v_prior;
    END IF;

    -- POST_WRITES: two ledger entries, the daily spend, the audit row, both balances.
    INSERT INTO ledger_entries (transaction_id, wallet_id, account, asset, amount, created_at)
    VALUES (v_tx, p_from, 'wallet:' || p_from, 'USD', -p_amount, v_now),
           (v_tx, p_to, 'wallet:' || p_to, 'USD', p_amount, v_now);
    INSERT INTO wallet_daily_spend (wallet_id, day, amount, count)
    VALUES (p_from, v_day, p_amount, 1)
    ON CONFLICT (wallet_id, day) DO UPDATE SET
        amount = LEAST(wallet_daily_spend.amount::numeric + EXCLUDED.amount, 9223372036854775807)::bigint,
        count = wallet_daily_spend.count + 1;
    INSERT INTO audit_logs (id, owner_id, actor_type, actor_id, action, resource_type,
        resource_id, old_value, new_value, request_id, ip, created_at)
    VALUES (gen_random_uuid(), p_owner, 'agent', p_agent, 'transaction.create', 'transaction',
        v_tx::text, NULL, p_audit, NULL, NULL, v_now);
    UPDATE wallets AS x
    SET balance = x.balance + CASE WHEN x.id = p_from THEN -p_amount ELSE p_amount END,
        version = x.version + 1,
        updated_at = v_now
    WHERE x.id = ANY (ARRAY[p_from, p_to]);
    RETURN v_tx;
END
$$;

-- The benchmark's batched ceiling: `p_n` whole transfers in one call and one commit, each
-- by `waiaas_bench_transfer` (the same statements, the same rows), between random wallets
-- among the bench wallets `1..=p_wallets` (with two, the hot pair in a random direction),
-- every wallet of the call locked first in id order (no deadlock between calls). No client
-- work and one round trip for `p_n` transfers: what PostgreSQL itself allows a batched design
-- on this machine, which no service in front of it can pass.
CREATE OR REPLACE FUNCTION waiaas_bench_transfers(
    p_n int,
    p_wallets bigint,
    p_owner uuid,
    p_agent uuid,
    p_audit jsonb
) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    v_from uuid[];
    v_to uuid[];
    v_amount bigint[];
BEGIN
    SELECT array_agg(('00000000-0000-7000-8000-' || lpad(to_hex(a), 12, '0'))::uuid ORDER BY i),
           array_agg(('00000000-0000-7000-8000-' || lpad(to_hex((a + d - 1) % p_wallets + 1), 12, '0'))::uuid ORDER BY i),
           array_agg(amount ORDER BY i)
    INTO v_from, v_to, v_amount
    FROM (SELECT i, 1 + floor(random() * p_wallets)::bigint AS a,
                 1 + floor(random() * (p_wallets - 1))::bigint AS d,
                 1 + floor(random() * 100)::bigint AS amount
          FROM generate_series(1, p_n) AS i) AS pairs;
    PERFORM 1 FROM wallets WHERE id = ANY (v_from || v_to) ORDER BY id FOR NO KEY UPDATE;
    FOR i IN 1 .. p_n LOOP
        PERFORM waiaas_bench_transfer(v_from[i], v_to[i], v_amount[i], p_owner, p_agent,
                                      gen_random_uuid()::text, p_audit);
    END LOOP;
    RETURN p_n;
END
$$;
