-- Signoff's two database roles (docs/ARCHITECTURE.md §2). Idempotent.
--   signoff_owner owns the schema and runs migrations.
--   signoff_app is what the web app and workers log in as: it owns nothing and is
--   subject to row-level security like everyone but a superuser.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'signoff_owner') THEN
        CREATE ROLE signoff_owner LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'signoff_app') THEN
        CREATE ROLE signoff_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB NOINHERIT;
    END IF;
END
$$;
-- Per database (run while connected to it):
--   GRANT CONNECT, CREATE, TEMPORARY ON DATABASE <db> TO signoff_owner;
--   GRANT CONNECT ON DATABASE <db> TO signoff_app;
--   GRANT USAGE, CREATE ON SCHEMA public TO signoff_owner;
--   GRANT USAGE ON SCHEMA public TO signoff_app;
