"""Workflow fixtures: a bound tenant and the specification's expense workflow."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.fixtures.workflows import spec_expense


@contextmanager
def in_tenant(app: Any, tenant: Any) -> Iterator[Any]:
    """An app context with ``tenant`` bound; yields the scoped session."""
    from signoff.db.binding import bound_tenant
    from signoff.extensions import db

    with app.app_context(), bound_tenant(tenant.id):
        try:
            yield db.session
        finally:
            db.session.rollback()
            db.session.remove()


def actor(tenant: Any, key: str, *, mfa: bool = False, method: str = "api") -> Any:
    from signoff.workflow.actions import Actor

    return Actor(
        user_id=tenant.user(key),
        method=method,
        ip_address="203.0.113.7",
        user_agent="pytest",
        mfa_verified_at=datetime.now(UTC) if mfa else None,
    )


def save(app: Any, tenant: Any, key: str, definition: dict[str, Any]) -> int:
    from signoff.workflow.actions import do_save_workflow

    with in_tenant(app, tenant) as session:
        return do_save_workflow(
            session, actor=actor(tenant, "admin"), key=key, definition=definition
        )


@pytest.fixture
def tenant(tenant_factory: Any, app: Any) -> Any:
    """A fresh tenant with the spec's expense workflow saved."""
    t = tenant_factory()
    save(app, t, "expense_approval", spec_expense())
    return t


def count(database: Any, table: str, tenant: Any) -> int:
    with database.connect("admin") as conn:
        row = conn.execute(
            f"SELECT count(*) FROM {table} WHERE tenant_id = %s",
            (tenant.id,),
        ).fetchone()
    return int(row[0])


def plans_by_role(database: Any, tenant_id: Any, predicate: str, params: tuple[Any, ...]) -> dict:
    """EXPLAIN of ``predicate`` as the app role and as the owner, ``tenant_id`` bound:
    {"app": plan, "owner": plan}. The owner reads through the owner-only policy
    ``approval_step_inbox``; the app role under row-level security."""
    plans = {}
    for role in ("app", "owner"):
        with database.connect(role) as conn:
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant_id),))
            rows = conn.execute("EXPLAIN " + predicate, params).fetchall()
            plans[role] = "\n".join(r[0] for r in rows)
    return plans
