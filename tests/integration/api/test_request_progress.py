"""Progress and due date of a request (the specification's get_progress_percentage,
due_date, is_overdue) in the API (list and detail) and the portal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from signoff.workflow.engine import RequestState, StepState
from signoff.workflow.progress import progress_of
from tests.fixtures.tenants import web_login
from tests.integration.workflow.conftest import save

EXPIRING = {
    "name": "Expiring",
    "expire_after_hours": 48,
    "steps": [
        {"name": "Manager", "required_role": "Manager"},
        {"name": "Finance", "required_role": "Finance_Manager"},
    ],
}


def _get(api, rid):
    return api.get(f"/api/v1/requests/{rid}", "alice").get_json()


def test_progress_due_date_and_overdue_in_the_api_and_the_portal(api_a, app, database, client):
    save(app, api_a.tenant, "expiring_two", EXPIRING)
    rid = api_a.submit(workflow="expiring_two")
    detail = _get(api_a, rid)
    submitted = datetime.fromisoformat(detail["submitted_at"])
    assert detail["progress"] == 0 and detail["overdue"] is False
    assert datetime.fromisoformat(detail["due_at"]) == submitted + timedelta(hours=48)

    ok = api_a.post(f"/api/v1/approval-workflow/approve/{rid}/0", "manager", json={})
    assert ok.status_code == 200, ok.get_json()
    assert _get(api_a, rid)["progress"] == 50
    listed = api_a.get("/api/v1/requests/?mine=true", "alice").get_json()["result"]
    mine = next(r for r in listed if r["id"] == rid)
    assert mine["progress"] == 50 and mine["due_at"] == detail["due_at"]

    # Submitted 49 hours ago (the sweep has not run yet): overdue.
    with database.connect("admin") as conn:
        conn.execute(
            "UPDATE approval_request SET submitted_at = submitted_at - interval '49 hours' "
            "WHERE id = %s",
            (rid,),
        )
        conn.commit()
    assert _get(api_a, rid)["overdue"] is True

    web_login(client, api_a.tenant.username("alice"))
    page = client.get(f"/t/{api_a.tenant.slug}/requests/{rid}").get_data(as_text=True)
    assert "50% of steps done (1 of 2)" in page
    assert 'data-testid="request-overdue"' in page
    mine_page = client.get(f"/t/{api_a.tenant.slug}/mine").get_data(as_text=True)
    assert "50% done" in mine_page

    # A workflow without expire_after_hours has no due date; approved is 100 %.
    other = api_a.submit(amount=80)  # auto-approved (amount_threshold)
    body = _get(api_a, other)
    assert body["due_at"] is None and body["progress"] == 100 and body["overdue"] is False


def test_progress_counts_skipped_steps_and_active_steps_past_their_sla():
    now = datetime(2026, 1, 10, tzinfo=UTC)

    def step(i, status, due=None):
        return StepState(
            index=i,
            name=f"s{i}",
            pattern="sequential",
            status=status,
            eligible={},
            slots=(),
            decisions=(),
            need=1,
            requires_mfa=False,
            due_at=due,
        )

    state = RequestState(
        status="pending",
        requester_id=1,
        steps=(
            step(0, "skipped"),
            step(1, "approved"),
            step(2, "active", now - timedelta(hours=1)),
        ),
    )
    p = progress_of("pending", state, now - timedelta(hours=2), {}, now=now)
    assert (p.progress, p.steps_done, p.steps_total, p.due_at) == (66, 2, 3, None)
    assert p.overdue is True  # the active step is past its SLA
    closed = progress_of(
        "rejected", state, now - timedelta(days=30), {"expire_after_hours": 1}, now=now
    )
    assert closed.overdue is False  # only open requests are overdue
