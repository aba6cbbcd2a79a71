"""User-global secrets: the app role reads only the secrets of the user a flow acts for.

docs/ARCHITECTURE.md §2 ("User-global secrets"), issue 12 item 11.

- ``mfa_totp``, ``mfa_recovery_code`` and ``mfa_token_verification`` get row-level
  security with the policy ``secret_owner``: a transaction sees and writes only the
  rows of the user it bound with ``app.secret_owner``
  (``signoff.current_secret_owner()``, set by ``signoff.db.binding.bind_secret_owner``
  in the MFA service); with none bound, nothing. Not forced: the owner is not subject
  to it.
- ``signoff.mfa_verification_purge(before)`` (SECURITY DEFINER) lets the clean-up job
  delete expired step-up verifications of every user without reading them.
- ``ab_user.password``: ``signoff_app`` loses ``SELECT`` on the table and gets it back
  on every other column; it keeps ``INSERT``, ``UPDATE`` (passwords are set and
  changed) and ``DELETE``. Password checks read one hash per transaction through
  ``signoff.login_password_hash(user_id)`` (SECURITY DEFINER). A column added to
  ``ab_user`` later is not readable by the app until a migration grants it.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

SECRET_TABLES = ("mfa_totp", "mfa_recovery_code", "mfa_token_verification")

# sql/functions/current_secret_owner.sql (a migration never reads sql/ at run time).
CURRENT_SECRET_OWNER = r"""
CREATE OR REPLACE FUNCTION signoff.current_secret_owner()
RETURNS integer
LANGUAGE sql
STABLE
PARALLEL SAFE
AS $$
    SELECT NULLIF(current_setting('app.secret_owner', true), '')::integer
$$;
"""

# sql/functions/login_password_hash.sql
LOGIN_PASSWORD_HASH = r"""
CREATE OR REPLACE FUNCTION signoff.login_password_hash(p_user_id integer)
RETURNS text
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_hash text;
BEGIN
    IF EXISTS (
        SELECT FROM pg_locks AS l
        WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid()
          AND l.classid = 1936617332 AND l.objid = pg_backend_pid()::oid AND l.objsubid = 2
    ) THEN
        RAISE EXCEPTION 'signoff.login_password_hash: one password hash per transaction'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM pg_advisory_xact_lock(1936617332, pg_backend_pid());
    SELECT u.password INTO v_hash
    FROM public.ab_user AS u
    WHERE u.id = p_user_id AND u.active;
    RETURN v_hash;
END
$$;
"""

# sql/functions/mfa_verification_purge.sql
MFA_VERIFICATION_PURGE = r"""
CREATE OR REPLACE FUNCTION signoff.mfa_verification_purge(p_before timestamp with time zone)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_count bigint;
BEGIN
    DELETE FROM public.mfa_token_verification AS v
    WHERE v.expires_at < LEAST(p_before, now());
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$$;
"""

# sql/policies/secret_owner.sql, one statement per table (literal SQL, no string building).
ENABLE_SECRET_OWNER = (
    """
ALTER TABLE mfa_totp ENABLE ROW LEVEL SECURITY;
CREATE POLICY secret_owner ON mfa_totp
    USING (user_id = signoff.current_secret_owner())
    WITH CHECK (user_id = signoff.current_secret_owner());
""",
    """
ALTER TABLE mfa_recovery_code ENABLE ROW LEVEL SECURITY;
CREATE POLICY secret_owner ON mfa_recovery_code
    USING (user_id = signoff.current_secret_owner())
    WITH CHECK (user_id = signoff.current_secret_owner());
""",
    """
ALTER TABLE mfa_token_verification ENABLE ROW LEVEL SECURITY;
CREATE POLICY secret_owner ON mfa_token_verification
    USING (user_id = signoff.current_secret_owner())
    WITH CHECK (user_id = signoff.current_secret_owner());
""",
)

DISABLE_SECRET_OWNER = (
    "DROP POLICY IF EXISTS secret_owner ON mfa_totp; "
    "ALTER TABLE mfa_totp DISABLE ROW LEVEL SECURITY",
    "DROP POLICY IF EXISTS secret_owner ON mfa_recovery_code; "
    "ALTER TABLE mfa_recovery_code DISABLE ROW LEVEL SECURITY",
    "DROP POLICY IF EXISTS secret_owner ON mfa_token_verification; "
    "ALTER TABLE mfa_token_verification DISABLE ROW LEVEL SECURITY",
)

#: Every column of ab_user the app reads: all but ``password``.
GRANT_USER_COLUMNS = """
GRANT SELECT (
    id, first_name, last_name, username, active, email, last_login, login_count,
    fail_login_count, created_on, changed_on, created_by_fk, changed_by_fk
) ON ab_user TO signoff_app
"""


def upgrade() -> None:
    # Locks up front, in the order FAB's user load takes them (ab_user first), so a
    # live request never waits on this migration while holding what it needs next.
    op.execute(
        "LOCK TABLE ab_user, mfa_totp, mfa_recovery_code, mfa_token_verification "
        "IN ACCESS EXCLUSIVE MODE"
    )
    op.execute(CURRENT_SECRET_OWNER)
    op.execute("REVOKE EXECUTE ON FUNCTION signoff.current_secret_owner() FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION signoff.current_secret_owner() TO signoff_app")
    for statement in ENABLE_SECRET_OWNER:
        op.execute(statement)
    op.execute(MFA_VERIFICATION_PURGE)
    op.execute(
        "REVOKE EXECUTE ON FUNCTION signoff.mfa_verification_purge(timestamp with time zone) "
        "FROM PUBLIC"
    )
    op.execute(
        "GRANT EXECUTE ON FUNCTION signoff.mfa_verification_purge(timestamp with time zone) "
        "TO signoff_app"
    )
    op.execute(LOGIN_PASSWORD_HASH)
    op.execute("REVOKE EXECUTE ON FUNCTION signoff.login_password_hash(integer) FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION signoff.login_password_hash(integer) TO signoff_app")
    op.execute("REVOKE SELECT ON ab_user FROM signoff_app")
    op.execute(GRANT_USER_COLUMNS)


def downgrade() -> None:
    op.execute(
        "LOCK TABLE ab_user, mfa_totp, mfa_recovery_code, mfa_token_verification "
        "IN ACCESS EXCLUSIVE MODE"
    )
    # Revoking the table privilege revokes the column privileges with it.
    op.execute("REVOKE SELECT ON ab_user FROM signoff_app")
    op.execute("GRANT SELECT ON ab_user TO signoff_app")
    op.execute("DROP FUNCTION IF EXISTS signoff.login_password_hash(integer)")
    op.execute("DROP FUNCTION IF EXISTS signoff.mfa_verification_purge(timestamp with time zone)")
    for statement in DISABLE_SECRET_OWNER:
        op.execute(statement)
    op.execute("DROP FUNCTION IF EXISTS signoff.current_secret_owner()")
