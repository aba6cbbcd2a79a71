-- The user (ab_user.id) whose MFA secrets the current transaction may touch, or
-- NULL when none is (docs/ARCHITECTURE.md §2, "User-global secrets"). Set per
-- transaction by signoff.db.binding.bind_secret_owner; every transaction starts
-- with it empty. STABLE for the same reason as signoff.current_tenant_id.
CREATE OR REPLACE FUNCTION signoff.current_secret_owner()
RETURNS integer
LANGUAGE sql
STABLE
PARALLEL SAFE
AS $$
    SELECT NULLIF(current_setting('app.secret_owner', true), '')::integer
$$;
