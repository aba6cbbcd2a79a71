"""Revocable sessions (issue 12 item 5): table user_session and its functions.

A global table (no tenant_id), like account_token and the MFA tables: a person's
web session is not bound to one tenant. Each row is one sign-in (a web session
cookie or an API token pair): the SHA-256 of a random token (the token itself is
in the signed cookie or the JWT's ``sid`` claim, never stored), the user, when it
was created, last seen and expires, when and why it was revoked, and a short user
agent and address. The app role has no privilege on the table: it reaches rows only
through SECURITY DEFINER functions keyed on a token (open, check, end, list) or, to
revoke, on the user (``signoff/security/sessions.py``).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03
"""

from __future__ import annotations

from typing import NamedTuple

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

# sql/functions/session_open.sql (a migration never reads sql/ at run time).
SESSION_OPEN = """
-- SECURITY DEFINER: records a new sign-in session (web cookie or API token pair) of
-- an active user. The app role has no privilege on user_session (a global table of
-- every person's sessions); it only reaches rows through these session_* functions,
-- each keyed on a session's token (its SHA-256) or, to revoke, on the user. The
-- token itself is never stored. Returns the session's id.
CREATE OR REPLACE FUNCTION signoff.session_open(
    p_user_id integer,
    p_hash bytea,
    p_kind text,
    p_tenant_id uuid,
    p_lifetime interval,
    p_user_agent text,
    p_address text
)
RETURNS uuid
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id uuid;
BEGIN
    IF p_hash IS NULL OR octet_length(p_hash) <> 32 THEN
        RAISE EXCEPTION 'session_open: a SHA-256 token hash is required'
            USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM public.ab_user AS u WHERE u.id = p_user_id AND u.active) THEN
        RAISE EXCEPTION 'session_open: no active user %', p_user_id USING ERRCODE = '22023';
    END IF;
    INSERT INTO public.user_session
        (user_id, token_hash, kind, token_tenant_id, expires_at, user_agent, address)
    VALUES (
        p_user_id, p_hash, p_kind, p_tenant_id, now() + p_lifetime,
        left(p_user_agent, 200), left(p_address, 64)
    )
    RETURNING id INTO v_id;
    RETURN v_id;
END
$$;
"""

# sql/functions/session_touch.sql (a migration never reads sql/ at run time).
SESSION_TOUCH = """
-- SECURITY DEFINER: the per-request check of a session token. Returns (session,
-- user) only while the session is neither revoked nor past its absolute expiry nor
-- idle longer than p_idle, and records the activity (at most once a minute, so a
-- busy session is not a write per request). A session found idle or expired is
-- marked revoked with that reason. Nothing about any other session is returned.
CREATE OR REPLACE FUNCTION signoff.session_touch(p_hash bytea, p_idle interval)
RETURNS TABLE (session_id uuid, user_id integer)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id uuid;
    v_user integer;
    v_seen timestamptz;
    v_expires timestamptz;
BEGIN
    IF p_hash IS NULL OR octet_length(p_hash) <> 32 THEN
        RETURN;
    END IF;
    SELECT s.id, s.user_id, s.last_seen_at, s.expires_at INTO v_id, v_user, v_seen, v_expires
    FROM public.user_session AS s
    WHERE s.token_hash = p_hash AND s.revoked_at IS NULL;
    IF v_id IS NULL THEN
        RETURN;
    END IF;
    IF v_expires <= now() OR v_seen <= now() - p_idle THEN
        UPDATE public.user_session AS s
        SET revoked_at = now(),
            revoked_reason = CASE WHEN v_expires <= now() THEN 'expired' ELSE 'idle' END
        WHERE s.id = v_id AND s.revoked_at IS NULL;
        RETURN;
    END IF;
    IF v_seen < now() - interval '1 minute' THEN
        UPDATE public.user_session AS s SET last_seen_at = now()
        WHERE s.id = v_id AND s.revoked_at IS NULL;
    END IF;
    session_id := v_id;
    user_id := v_user;
    RETURN NEXT;
END
$$;
"""

# sql/functions/session_end.sql (a migration never reads sql/ at run time).
SESSION_END = """
-- SECURITY DEFINER: ends a session of the person who holds the token p_hash: the
-- token's own session when p_session_id is NULL (logging out), otherwise the
-- session p_session_id if it belongs to the same person (signing out one device
-- from the sessions page). The token's own session must still be live to end
-- another one. Returns the number of sessions ended (0 or 1).
CREATE OR REPLACE FUNCTION signoff.session_end(p_hash bytea, p_session_id uuid, p_reason text)
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_own uuid;
    v_user integer;
    v_count integer;
BEGIN
    IF p_hash IS NULL OR octet_length(p_hash) <> 32 THEN
        RETURN 0;
    END IF;
    SELECT s.id, s.user_id INTO v_own, v_user FROM public.user_session AS s
    WHERE s.token_hash = p_hash AND s.revoked_at IS NULL;
    IF v_own IS NULL THEN
        RETURN 0;
    END IF;
    UPDATE public.user_session AS s
    SET revoked_at = now(), revoked_reason = left(p_reason, 32)
    WHERE s.id = coalesce(p_session_id, v_own)
      AND s.user_id = v_user
      AND s.revoked_at IS NULL;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$$;
"""

# sql/functions/session_revoke_user.sql (a migration never reads sql/ at run time).
SESSION_REVOKE_USER = """
-- SECURITY DEFINER: ends every live session of one person, except the session of
-- the token p_keep (the browser that changed the password), and only the sessions
-- opened for tenant p_tenant_id when it is given (a tenant admin deactivating a
-- member ends the tokens issued for that tenant; web sessions are not tenant
-- bound and lose that tenant at the membership check of every request). Called in
-- the transaction that changes the password or deactivates the person, so the
-- change and the revocation commit together. Returns the number ended.
CREATE OR REPLACE FUNCTION signoff.session_revoke_user(
    p_user_id integer,
    p_keep bytea,
    p_tenant_id uuid,
    p_reason text
)
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_count integer;
BEGIN
    UPDATE public.user_session AS s
    SET revoked_at = now(), revoked_reason = left(p_reason, 32)
    WHERE s.user_id = p_user_id
      AND s.revoked_at IS NULL
      AND (p_keep IS NULL OR s.token_hash <> p_keep)
      AND (p_tenant_id IS NULL OR s.token_tenant_id = p_tenant_id);
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$$;
"""

# sql/functions/session_list.sql (a migration never reads sql/ at run time).
SESSION_LIST = """
-- SECURITY DEFINER: the live sessions of the person who holds the token p_hash (a
-- live session), newest first, with which one is the caller's; sessions past their
-- expiry or idle longer than p_idle are left out. Never the token hashes, never
-- anyone else's sessions.
CREATE OR REPLACE FUNCTION signoff.session_list(p_hash bytea, p_idle interval)
RETURNS TABLE (
    id uuid,
    kind text,
    tenant_id uuid,
    created_at timestamptz,
    last_seen_at timestamptz,
    expires_at timestamptz,
    user_agent text,
    address text,
    is_current boolean
)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_user integer;
BEGIN
    IF p_hash IS NULL OR octet_length(p_hash) <> 32 THEN
        RETURN;
    END IF;
    SELECT s.user_id INTO v_user FROM public.user_session AS s
    WHERE s.token_hash = p_hash AND s.revoked_at IS NULL;
    IF v_user IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT s.id, s.kind::text, s.token_tenant_id, s.created_at, s.last_seen_at, s.expires_at,
           s.user_agent::text, s.address::text, s.token_hash = p_hash
    FROM public.user_session AS s
    WHERE s.user_id = v_user AND s.revoked_at IS NULL AND s.expires_at > now()
      AND s.last_seen_at > now() - p_idle
    ORDER BY s.created_at DESC, s.id;
END
$$;
"""

class Function(NamedTuple):
    create: str
    revoke: str
    grant: str
    drop: str


FUNCTIONS = (
    Function(
        SESSION_OPEN,
        "REVOKE EXECUTE ON FUNCTION signoff.session_open(integer, bytea, text, uuid, interval, text, text) FROM PUBLIC",
        "GRANT EXECUTE ON FUNCTION signoff.session_open(integer, bytea, text, uuid, interval, text, text) TO signoff_app",
        "DROP FUNCTION IF EXISTS signoff.session_open(integer, bytea, text, uuid, interval, text, text)",
    ),
    Function(
        SESSION_TOUCH,
        "REVOKE EXECUTE ON FUNCTION signoff.session_touch(bytea, interval) FROM PUBLIC",
        "GRANT EXECUTE ON FUNCTION signoff.session_touch(bytea, interval) TO signoff_app",
        "DROP FUNCTION IF EXISTS signoff.session_touch(bytea, interval)",
    ),
    Function(
        SESSION_END,
        "REVOKE EXECUTE ON FUNCTION signoff.session_end(bytea, uuid, text) FROM PUBLIC",
        "GRANT EXECUTE ON FUNCTION signoff.session_end(bytea, uuid, text) TO signoff_app",
        "DROP FUNCTION IF EXISTS signoff.session_end(bytea, uuid, text)",
    ),
    Function(
        SESSION_REVOKE_USER,
        "REVOKE EXECUTE ON FUNCTION signoff.session_revoke_user(integer, bytea, uuid, text) FROM PUBLIC",
        "GRANT EXECUTE ON FUNCTION signoff.session_revoke_user(integer, bytea, uuid, text) TO signoff_app",
        "DROP FUNCTION IF EXISTS signoff.session_revoke_user(integer, bytea, uuid, text)",
    ),
    Function(
        SESSION_LIST,
        "REVOKE EXECUTE ON FUNCTION signoff.session_list(bytea, interval) FROM PUBLIC",
        "GRANT EXECUTE ON FUNCTION signoff.session_list(bytea, interval) TO signoff_app",
        "DROP FUNCTION IF EXISTS signoff.session_list(bytea, interval)",
    ),
)


def upgrade() -> None:
    op.create_table(
        "user_session",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("token_tenant_id", sa.UUID(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "last_seen_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sa.String(length=32), nullable=True),
        sa.Column("user_agent", sa.String(length=200), nullable=True),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_user_session"),
        sa.UniqueConstraint("token_hash", name="uq_user_session_token_hash"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["ab_user.id"], name="fk_user_session_user", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["token_tenant_id"], ["tenant.id"], name="fk_user_session_tenant", ondelete="CASCADE"
        ),
        sa.CheckConstraint("kind IN ('web', 'api')", name="ck_user_session_kind"),
        sa.CheckConstraint("octet_length(token_hash) = 32", name="ck_user_session_token_hash"),
    )
    op.create_index("ix_user_session_user_id", "user_session", ["user_id"])
    # No grant to signoff_app: the functions below are its only way to the rows.
    for function in FUNCTIONS:
        op.execute(function.create)
        op.execute(function.revoke)
        op.execute(function.grant)


def downgrade() -> None:
    for function in FUNCTIONS:
        op.execute(function.drop)
    op.drop_index("ix_user_session_user_id", table_name="user_session")
    op.drop_table("user_session")
