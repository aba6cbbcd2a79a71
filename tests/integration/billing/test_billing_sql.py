"""The billing tables and signoff.billing_customer_tenant, attacked as signoff_app (never
a superuser): another tenant's billing rows, usage and events are invisible and
unwritable; the customer lookup answers only with no tenant bound and only for a
customer exactly one tenant stores. No Stripe involved."""

from __future__ import annotations

import uuid

import pytest
from psycopg import errors


def bind(conn, tenant):
    conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant),))


def _customer(database, tenant, customer):
    with database.connect("app") as conn:
        bind(conn, tenant.id)
        conn.execute(
            "INSERT INTO tenant_billing (stripe_customer_id) VALUES (%s) "
            "ON CONFLICT (tenant_id) DO UPDATE"
            " SET stripe_customer_id = EXCLUDED.stripe_customer_id",
            (customer,),
        )
        conn.execute(
            "INSERT INTO billing_event (event_id, type, created, outcome) "
            "VALUES (%s, 'invoice.paid', 1, 'paid')",
            (f"evt_{uuid.uuid4().hex}",),
        )
        conn.execute("INSERT INTO billing_usage (period, requests) VALUES ('2026-01-01', 5)")
        conn.commit()


def test_billing_rows_are_the_bound_tenants_own(database, tenant_factory):
    a, b = tenant_factory(), tenant_factory()
    _customer(database, a, f"cus_a{uuid.uuid4().hex[:10]}")
    _customer(database, b, f"cus_b{uuid.uuid4().hex[:10]}")
    with database.connect("app") as conn:
        bind(conn, a.id)
        for table in ("tenant_billing", "billing_event", "billing_usage"):
            rows = conn.execute(f"SELECT DISTINCT tenant_id FROM {table}").fetchall()
            assert rows == [(a.id,)], table
        assert (
            conn.execute(
                "UPDATE tenant_billing SET status = 'past_due' WHERE tenant_id = %s", (b.id,)
            ).rowcount
            == 0
        )
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO billing_event (tenant_id, event_id, type, created, outcome) "
                "VALUES (%s, 'evt_forged', 'invoice.paid', 1, 'paid')",
                (b.id,),
            )
        conn.rollback()
        # Events are insert-only for the app: no rewriting history.
        bind(conn, a.id)
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("DELETE FROM billing_event")
        conn.rollback()


def test_customer_lookup_needs_no_tenant_bound_and_one_owner(database, tenant_factory):
    a, b = tenant_factory(), tenant_factory()
    mine = f"cus_m{uuid.uuid4().hex[:10]}"
    _customer(database, a, mine)
    with database.connect("app") as conn:
        assert conn.execute("SELECT signoff.billing_customer_tenant(%s)", (mine,)).fetchone() == (
            a.id,
        )
        assert conn.execute("SELECT signoff.billing_customer_tenant('cus_nobody')").fetchone() == (
            None,
        )
        conn.commit()
        bind(conn, b.id)
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("SELECT signoff.billing_customer_tenant(%s)", (mine,))
        conn.rollback()
    # The same customer id stored by a second tenant: nobody is answered.
    _customer(database, b, mine)
    with database.connect("app") as conn:
        assert conn.execute("SELECT signoff.billing_customer_tenant(%s)", (mine,)).fetchone() == (
            None,
        )
