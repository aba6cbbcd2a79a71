"""The tenants of one account (``signoff.account_tenants``) for events about the
account itself: a password reset by e-mail link, a password change and failed logins
are audited in every tenant the account is an active member of (issue 12, items 2
and 4), although none of them has a tenant bound.

The policy ``membership_resolve`` lets ``signoff_owner`` (the function's owner) read
memberships across tenants, as ``api_key_resolve`` does for ``api_key``; the app role
still sees only the bound tenant's rows.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

# sql/functions/account_tenants.sql (a migration never reads sql/ at run time).
ACCOUNT_TENANTS = """
-- SECURITY DEFINER: the tenants in which user U has an active membership, for the
-- events about an account itself that belong in each of its tenants' audit chains
-- (a password reset by e-mail link, a password change, failed logins). Those
-- happen with no tenant bound, and memberships are tenant rows under RLS; the
-- policy membership_resolve lets only signoff_owner, i.e. this function, read
-- them across tenants. Returns tenant ids only, in id order (callers append to
-- the chains in that order, so two of them never take the tenants' audit locks in
-- opposite orders). Refused while a tenant is bound: a tenant's request, API call
-- or job never learns other tenants' ids from it; the caller unbinds first.
CREATE OR REPLACE FUNCTION signoff.account_tenants(p_user_id integer)
RETURNS SETOF uuid
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF signoff.current_tenant_id() IS NOT NULL THEN
        RAISE EXCEPTION 'account_tenants: not allowed while a tenant is bound'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN QUERY
        SELECT m.tenant_id
        FROM public.membership AS m
        WHERE m.user_id = p_user_id AND m.active
        ORDER BY m.tenant_id;
END
$$;
"""


def upgrade() -> None:
    # sql/policies/membership_resolve.sql
    op.execute(
        "CREATE POLICY membership_resolve ON membership FOR SELECT TO signoff_owner USING (true)"
    )
    op.execute(ACCOUNT_TENANTS)
    op.execute("REVOKE EXECUTE ON FUNCTION signoff.account_tenants(integer) FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION signoff.account_tenants(integer) TO signoff_app")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS signoff.account_tenants(integer)")
    op.execute("DROP POLICY IF EXISTS membership_resolve ON membership")
