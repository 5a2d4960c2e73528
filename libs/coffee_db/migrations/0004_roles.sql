-- One role per use (coffee_db/roles.py, docs/security.md): the job writes only its tables, the
-- dashboard only reads, the exporter only monitors. Roles belong to the whole server, so each is
-- created once; without a password nobody can log in as it until the deployment sets one.
DO $$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['coffee_job', 'coffee_dashboard', 'coffee_monitor'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = role_name) THEN
            EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION', role_name);
        END IF;
    END LOOP;
END
$$;

-- Nobody but the owner creates objects in the schema (the default since PostgreSQL 15).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- The job upserts absolute values (INSERT ... ON CONFLICT DO UPDATE): no DELETE, no TRUNCATE.
GRANT SELECT, INSERT, UPDATE ON orders, order_items, sales_by_minute, sales_by_hour TO coffee_job;

-- The dashboard reads the history; nothing else.
GRANT SELECT ON orders, order_items, sales_by_minute, sales_by_hour TO coffee_dashboard;

-- The exporter reads the server's statistics, not the tables' data.
GRANT pg_monitor TO coffee_monitor;
