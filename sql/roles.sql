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
--   REVOKE CREATE ON SCHEMA public FROM PUBLIC, signoff_app;
-- The app role creates nothing, not even temporary objects or large objects.
-- PostgreSQL grants TEMPORARY on a new database, and EXECUTE on the large-object
-- functions, to PUBLIC. Take them away on Signoff's database (its owner keeps its
-- own TEMPORARY grant above; another role that needs temporary tables there needs
-- its own grant). Only a superuser or the database's owner can do this, not
-- signoff_owner, so no migration does it: `signoff db init-roles` does.
--   REVOKE TEMPORARY ON DATABASE <db> FROM PUBLIC, signoff_app;
--   REVOKE EXECUTE ON FUNCTION
--       pg_catalog.lo_creat(integer), pg_catalog.lo_create(oid),
--       pg_catalog.lo_import(text), pg_catalog.lo_import(text, oid),
--       pg_catalog.lo_export(oid, text), pg_catalog.lo_from_bytea(oid, bytea),
--       pg_catalog.lo_put(oid, bigint, bytea), pg_catalog.lo_open(oid, integer),
--       pg_catalog.lowrite(integer, bytea), pg_catalog.loread(integer, integer),
--       pg_catalog.lo_get(oid), pg_catalog.lo_get(oid, bigint, integer),
--       pg_catalog.lo_truncate(integer, integer), pg_catalog.lo_truncate64(integer, bigint),
--       pg_catalog.lo_unlink(oid), pg_catalog.lo_close(integer),
--       pg_catalog.lo_lseek(integer, integer, integer),
--       pg_catalog.lo_lseek64(integer, bigint, integer),
--       pg_catalog.lo_tell(integer), pg_catalog.lo_tell64(integer)
--   FROM PUBLIC, signoff_app;
