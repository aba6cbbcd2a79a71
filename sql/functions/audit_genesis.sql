-- The prev_hash of a tenant's first audit event (seq 1):
-- sha256('signoff-audit-genesis:' || tenant_id::text). Tenant-specific, so no two
-- chains share a first link and a chain cannot be passed off as another tenant's.
-- decode(..., 'escape') of this backslash-free ASCII text is its bytes (IMMUTABLE,
-- unlike convert_to()).
CREATE OR REPLACE FUNCTION signoff.audit_genesis(p_tenant_id uuid)
RETURNS bytea
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
RETURN pg_catalog.sha256(
    pg_catalog.decode('signoff-audit-genesis:' || p_tenant_id::text, 'escape')
);
