"""The outbox sweep visits only the tenants with work due (migration 0036).

``signoff.notification_due_tenants`` names, for the app role, the tenants that have
outbox rows to fan out or deliveries whose next attempt has come: tenant ids only,
while the rows themselves stay behind row-level security. A sweep with nothing due
costs one statement however many tenants exist."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event

from tests.integration.api.conftest import Api, expense_tenant
from tests.integration.notifications.conftest import dispatch

LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


def _due(database: Any, at: datetime) -> set[str]:
    with database.connect("app") as conn:
        rows = conn.execute("SELECT * FROM signoff.notification_due_tenants(%s)", (at,))
        return {str(r[0]) for r in rows}


def test_only_tenants_with_work_due_are_named_and_no_rows_are_read(
    api_a: Api, wb: Any, database: Any, app: Any
) -> None:
    api_a.submit(5000)  # an outbox row for tenant A's approvers
    now = datetime.now(UTC) + timedelta(seconds=1)
    due = _due(database, now)
    assert str(api_a.tenant.id) in due
    assert str(wb.id) not in due  # B has nothing waiting (wb submits nothing)
    # Nothing was due in 2000: the rows' own times decide.
    assert _due(database, LONG_AGO) == set()
    # The app role still reads no outbox or delivery row across tenants.
    with database.connect("app") as conn:
        assert conn.execute("SELECT count(*) FROM notification_outbox").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM notification_delivery").fetchone() == (0,)
    # Once A is dispatched it is no longer named (its deliveries are sent or wait for
    # their next attempt).
    dispatch(app, api_a.tenant, now=now)
    assert str(api_a.tenant.id) not in _due(database, now)


def test_a_sweep_with_nothing_due_is_one_statement(app: Any, wa: Any, wb: Any) -> None:
    from signoff.extensions import db
    from signoff.notifications.dispatch import dispatch_all

    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    with app.app_context():
        engine = db.engine
        event.listen(engine, "before_cursor_execute", count)
        try:
            report = dispatch_all(db.session, now=LONG_AGO)
        finally:
            event.remove(engine, "before_cursor_execute", count)
            db.session.remove()
    assert report.fanned_out == 0 and report.sent == 0
    reads = [s for s in statements if "SELECT" in s.upper() and "set_config" not in s]
    assert len(reads) == 1 and "notification_due_tenants" in reads[0], statements


def test_the_sla_sweep_visits_only_tenants_with_an_active_step(
    client: Any, app: Any, tenant_factory: Any, wb: Any, database: Any
) -> None:
    """Migration 0038: only a tenant with an active step can have anything overdue,
    a reminder due or a request to expire."""
    api_a = Api(client, expense_tenant(tenant_factory, app))  # a tenant of its own
    rid = api_a.submit(5000)  # waits for the manager: an active step

    def named() -> set[str]:
        with database.connect("app") as conn:
            return {str(r[0]) for r in conn.execute("SELECT * FROM signoff.sla_due_tenants()")}

    assert str(api_a.tenant.id) in named()
    assert str(wb.id) not in named()  # B has no request at all
    withdrawn = api_a.post(f"/api/v1/requests/{rid}/withdraw", "alice", json={"comment": "no"})
    assert withdrawn.status_code == 200, withdrawn.get_json()
    assert str(api_a.tenant.id) not in named()
    # The app role still reads no step of any tenant without a binding.
    with database.connect("app") as conn:
        assert conn.execute("SELECT count(*) FROM approval_step").fetchone() == (0,)
