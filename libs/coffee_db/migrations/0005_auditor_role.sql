-- The ledger auditor's role (coffee_db/roles.py, docs/security.md): its tally (the ledger_* tables)
-- and, for the history rebuilds it runs, the job's upserts into the history; no DELETE on the
-- history, no TRUNCATE, no DDL. Created once per server, without a password, like 0004's roles.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'coffee_auditor') THEN
        CREATE ROLE coffee_auditor LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
    END IF;
END
$$;

GRANT SELECT, INSERT, UPDATE, DELETE ON ledger_tally, ledger_positions, ledger_totals, ledger_seen TO coffee_auditor;
GRANT SELECT, INSERT, UPDATE ON orders, order_items, sales_by_minute, sales_by_hour TO coffee_auditor;
