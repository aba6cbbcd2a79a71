"""The outbox sweep visits only the tenants with notification work due.

``dispatch_all`` (the worker's outbox sweep, every ``SIGNOFF_OUTBOX_SWEEP_SECONDS``)
visited every active tenant with a few statements each, so its cost grew with the
number of tenants even when nothing was due. ``signoff.notification_due_tenants``
(SECURITY DEFINER, owned by ``signoff_owner``) names the tenants that have outbox rows
to fan out or deliveries whose next attempt has come, on the two partial indexes
that hold only such rows; the policies ``notification_outbox_due`` and
``notification_delivery_due`` let only the owner read the two tables across tenants
(as ``approval_step_inbox`` does for ``approval_step``). It returns tenant ids only.

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0036"
down_revision = "0035"
branch_labels = None
depends_on = None

# sql/functions/notification_due_tenants.sql (a migration never reads sql/ at run time).
DUE_TENANTS = """
CREATE OR REPLACE FUNCTION signoff.notification_due_tenants(p_now timestamp with time zone)
RETURNS SETOF uuid
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
        SELECT o.tenant_id
        FROM public.notification_outbox AS o
        WHERE o.dispatched_at IS NULL AND o.scheduled_for <= p_now
        UNION
        SELECT d.tenant_id
        FROM public.notification_delivery AS d
        WHERE d.status = 'pending' AND d.next_attempt_at <= p_now;
END
$$;
"""


def upgrade() -> None:
    # sql/policies/notification_outbox_due.sql
    op.execute(
        "CREATE POLICY notification_outbox_due ON notification_outbox FOR SELECT "
        "TO signoff_owner USING (true)"
    )
    # sql/policies/notification_delivery_due.sql
    op.execute(
        "CREATE POLICY notification_delivery_due ON notification_delivery FOR SELECT "
        "TO signoff_owner USING (true)"
    )
    op.execute(DUE_TENANTS)
    op.execute(
        "REVOKE EXECUTE ON FUNCTION signoff.notification_due_tenants(timestamp with time zone) "
        "FROM PUBLIC"
    )
    op.execute(
        "GRANT EXECUTE ON FUNCTION signoff.notification_due_tenants(timestamp with time zone) "
        "TO signoff_app"
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS signoff.notification_due_tenants(timestamp with time zone)")
    op.execute("DROP POLICY IF EXISTS notification_delivery_due ON notification_delivery")
    op.execute("DROP POLICY IF EXISTS notification_outbox_due ON notification_outbox")
