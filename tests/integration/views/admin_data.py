"""Known data for the issue 15 admin pages: requests with hand-set times.

``seed_analytics`` makes seven expense requests (the specification's workflow:
amounts from 100 to 1000 need the Manager step only, under 100 are auto-approved)
through the action layer, then sets their times with the admin connection (the
decision rows' immutability trigger is set aside for that one transaction only), so
every figure below is computed by hand:

=====  ===========================  =========  ===================  ==============
req    what happens                  submitted  step/decision after  completed
=====  ===========================  =========  ===================  ==============
R1     approved by manager           09:00      1 h (due 09:30)      10:00
R2     approved by manager2          09:00      3 h                  12:00
R3     approved by manager           09:00      5 h                  14:00
R4     rejected by manager           09:00      2 h                  11:00
R5     auto-approved (amount 50)     09:00      —                    09:00
R6     pending                       09:00      —                    —
R7     changes requested, manager2   09:00      4 h                  —
=====  ===========================  =========  ===================  ==============

All on ``DAY`` (a Wednesday). Approval times of requests people approved: 1, 3, 5 h:
median 3 h, p90 = 3 + 0.8 * (5 - 3) = 4.6 h (``percentile_cont``). Rejection rate
1 / (3 + 1) = 25 %; changes requested 1 of the 5 requests people decided = 20 %.
SLA breaches: R1's step was due at 09:30 and completed at 10:00: 1. Approvers: manager
decided after 1, 5 and 2 h (median 2 h), manager2 after 3 and 4 h (median 3.5 h).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.fixtures.workflows import spec_expense
from tests.integration.workflow.conftest import actor, in_tenant, save

DAY = datetime(2026, 6, 10, tzinfo=UTC)
START = DAY.replace(hour=9)
HOUR = timedelta(hours=1)


def _submit(app: Any, tenant: Any, amount: int, title: str, data: dict[str, Any]) -> uuid.UUID:
    from signoff.workflow.actions import do_submit

    with in_tenant(app, tenant) as session:
        result = do_submit(
            session,
            actor=actor(tenant, "alice"),
            workflow_key="expense_approval",
            input_data={"amount": amount, **data},
            title=title,
        )
    return result.request_id


def _decide(app: Any, tenant: Any, rid: uuid.UUID, how: str, who: str) -> None:
    from signoff.workflow import actions

    decide = {
        "approve": actions.do_approve,
        "reject": actions.do_reject,
        "request_changes": actions.do_request_changes,
    }[how]
    with in_tenant(app, tenant) as session:
        decide(
            session, actor=actor(tenant, who), request_id=rid, step_index=0, comment="Reason given"
        )


def seed_analytics(app: Any, database: Any, tenant: Any, *, marker: str) -> dict[str, uuid.UUID]:
    """The seven requests above in ``tenant``; ``marker`` is a word in R1's input."""
    save(app, tenant, "expense_approval", spec_expense())
    plan = [
        ("R1", 500, "approve", "manager", 1, {"vendor": f"{marker} Supplies", "cost_centre": "42"}),
        ("R2", 600, "approve", "manager2", 3, {"vendor": "Office Depot"}),
        ("R3", 700, "approve", "manager", 5, {"vendor": "Paper Co"}),
        ("R4", 800, "reject", "manager", 2, {"vendor": "Gadgets Ltd"}),
        ("R5", 50, None, None, 0, {"vendor": "Coffee"}),
        ("R6", 900, None, None, 0, {"vendor": "Chairs"}),
        ("R7", 300, "request_changes", "manager2", 4, {"vendor": "Lamps"}),
    ]
    ids: dict[str, uuid.UUID] = {}
    for name, amount, how, who, _, data in plan:
        rid = _submit(app, tenant, amount, f"{name} expense", data)
        if how:
            _decide(app, tenant, rid, how, who)
        ids[name] = rid
    with database.connect("admin") as conn:
        conn.execute("SET LOCAL session_replication_role = replica")
        for name, _amount, _how, _who, hours, _data in plan:
            rid = ids[name]
            done = START + hours * HOUR
            conn.execute(
                "UPDATE approval_request SET submitted_at = %s, updated_at = %s, "
                "completed_at = CASE WHEN status IN ('approved', 'rejected') THEN %s END "
                "WHERE tenant_id = %s AND id = %s",
                (START, done, done, tenant.id, rid),
            )
            conn.execute(
                "UPDATE approval_step SET activated_at = CASE WHEN activated_at IS NULL "
                "THEN NULL ELSE %s END, due_at = NULL, "
                "completed_at = CASE WHEN completed_at IS NULL THEN NULL ELSE %s END "
                "WHERE tenant_id = %s AND request_id = %s",
                (START, done, tenant.id, rid),
            )
            conn.execute(
                "UPDATE step_decision SET decided_at = %s WHERE tenant_id = %s AND request_id = %s",
                (done, tenant.id, rid),
            )
        conn.execute(
            "UPDATE approval_step SET due_at = %s "
            "WHERE tenant_id = %s AND request_id = %s AND step_index = 0",
            (START + HOUR / 2, tenant.id, ids["R1"]),
        )
    return ids


PERIOD = "since=2026-06-08&until=2026-06-14"
