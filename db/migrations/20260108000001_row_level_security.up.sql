-- Row-level security, the second tenant wall (db/rls.go explains the
-- binding). The service connects as csat_app: it owns nothing, is no
-- superuser and has no BYPASSRLS, so every policy applies to it.
--
-- A NEW TENANT TABLE (any table with tenant_id) needs, in its migration:
--     SELECT csat_protect_tenant_table('my_table');
-- db.TestEveryTenantTableHasRLS fails until it has it.

-- Roles are cluster-wide: another database (or a test database migrating
-- concurrently) may have created it already. Without CREATEROLE, create it
-- once by hand before migrating.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'csat_app') THEN
        CREATE ROLE csat_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END $$;

GRANT USAGE ON SCHEMA public TO csat_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO csat_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO csat_app;
-- Tables later migrations create get the same grants.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO csat_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO csat_app;
-- Migrations are the owner's business.
REVOKE ALL ON bun_migrations, bun_migration_locks FROM csat_app;

-- csat_protect_tenant_table turns on the tenant wall for one table: rows
-- are visible and writable only while app.tenant_id names their tenant.
-- FORCE makes the policy apply to the table owner too (superusers still
-- bypass it: the migrations and tests' fixtures run as one).
CREATE FUNCTION csat_protect_tenant_table(tbl regclass) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', tbl);
    EXECUTE format($p$CREATE POLICY tenant_isolation ON %s
        USING (tenant_id = current_setting('app.tenant_id', true))
        WITH CHECK (tenant_id = current_setting('app.tenant_id', true))$p$, tbl);
END $$;
REVOKE ALL ON FUNCTION csat_protect_tenant_table(regclass) FROM PUBLIC;

SELECT csat_protect_tenant_table('api_keys');
SELECT csat_protect_tenant_table('csat_configs');
SELECT csat_protect_tenant_table('surveys');
SELECT csat_protect_tenant_table('survey_clicks');
SELECT csat_protect_tenant_table('survey_stats_hourly');
SELECT csat_protect_tenant_table('survey_counts');
SELECT csat_protect_tenant_table('survey_stats_daily');

-- Authentication looks a key up by its hash before the tenant is known.
-- This policy shows exactly the row whose hash the caller bound
-- (app.api_key_hash, set by db.FindAPIKeyByHash), so knowing a key is
-- needed to see its row and no query can list other tenants' keys.
CREATE POLICY api_keys_lookup ON api_keys FOR SELECT
    USING (key_hash = decode(nullif(current_setting('app.api_key_hash', true), ''), 'hex'));

-- tenants has no tenant_id and no RLS: it holds ids and display names only,
-- and system work (the sweep, tenant creation) lists it to then bind one
-- tenant at a time.
