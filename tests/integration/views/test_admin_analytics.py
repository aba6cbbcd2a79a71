"""Issue 15 item 2: the analytics dashboard and /api/v1/metrics/ with known data
(tests/integration/views/admin_data.py computes each figure by hand)."""

from __future__ import annotations

import re
import uuid

import pytest

from tests.fixtures.tenants import api_token, auth, fresh_client
from tests.integration.views.admin_data import PERIOD, seed_analytics
from tests.integration.views.conftest import text_of

HOUR = 3600.0


@pytest.fixture(scope="module")
def seeded(app, database, tenant_factory):
    tenant = tenant_factory()
    ids = seed_analytics(app, database, tenant, marker=f"zq{uuid.uuid4().hex[:6]}")
    return tenant, ids


def _figure(html: str, table: str, name: str, row: str | None = None) -> str:
    part = html.split(f'data-testid="{table}"', 1)[1]
    if row:
        part = part.split(row, 1)[1]
    found = re.search(rf'data-figure="{name}">([^<]*)<', part)
    assert found, (table, name)
    return found.group(1)


def test_the_api_reports_the_hand_computed_figures(app, seeded):
    tenant, _ = seeded
    client = fresh_client(app)
    token = api_token(client, tenant.username("admin"), tenant.slug)
    body = client.get(f"/api/v1/metrics/?{PERIOD}", headers=auth(token)).get_json()
    assert body["period"] == {"since": "2026-06-08", "until": "2026-06-14"}
    # get_metrics(): auto-approved apart, the average over the three people approved.
    assert body["total_requests"] == 7
    assert body["total_approvals"] == 3
    assert body["auto_approved"] == 1
    assert body["pending"] == 1
    assert body["avg_approval_time"] == pytest.approx(3 * HOUR)
    assert body["approval_success_rate"] == pytest.approx(0.75)
    a = body["analytics"]
    t = a["totals"]
    assert (t["total"], t["decided"], t["auto_approved"], t["pending"]) == (7, 4, 1, 1)
    assert t["approval_time"] == {"median": 3 * HOUR, "p90": 4.6 * HOUR}
    assert t["rejection_rate"] == 0.25
    assert t["changes_requested"] == 1 and t["changes_requested_rate"] == 0.2
    assert t["sla_breaches"] == 1
    (wf,) = a["workflows"]
    assert wf["workflow"] == "expense_approval" and wf["approval_time"]["p90"] == 4.6 * HOUR
    manager_step = next(s for s in a["steps"] if s["step"] == 0)
    assert manager_step["approved"] == 3
    assert manager_step["approval_time"] == {"median": 3 * HOUR, "p90": 4.6 * HOUR}
    assert manager_step["sla_breaches"] == 1
    approvers = {x["user_id"]: (x["decisions"], x["median"]) for x in a["slowest_approvers"]}
    assert approvers == {
        int(tenant.user("manager2")): (2, 3.5 * HOUR),
        int(tenant.user("manager")): (3, 2 * HOUR),
    }
    assert a["slowest_approvers"][0]["user_id"] == int(tenant.user("manager2"))
    assert a["throughput"] == [{"week": "2026-06-08", "submitted": 7, "completed": 5}]


def test_the_dashboard_charts_the_same_numbers(app, seeded, login):
    tenant, _ = seeded
    admin = login(tenant.username("admin"))
    resp = admin.get(f"/t/{tenant.slug}/admin/analytics/?{PERIOD}")
    html = text_of(resp)
    assert resp.status_code == 200
    assert _figure(html, "totals", "total") == "7"
    assert _figure(html, "totals", "decided") == "4"
    assert _figure(html, "totals", "auto_approved") == "1"
    assert _figure(html, "totals", "median") == "3.0 h"
    assert _figure(html, "totals", "p90") == "4.6 h"
    assert _figure(html, "totals", "rejection_rate") == "25.0 %"
    assert _figure(html, "totals", "changes_requested_rate") == "20.0 %"
    assert _figure(html, "totals", "sla_breaches") == "1"
    # The charts carry the numbers as text (no JavaScript).
    chart = html.split('data-testid="chart-approval-time"', 1)[1].split("</svg>", 1)[0]
    assert 'data-label="Expense Approval median" data-value="3.0 h"' in chart
    assert 'data-label="Expense Approval p90" data-value="4.6 h"' in chart
    assert ">3.0 h</text>" in chart and ">4.6 h</text>" in chart
    weeks = html.split('data-testid="chart-throughput"', 1)[1].split("</svg>", 1)[0]
    assert 'data-week="2026-06-08" data-submitted="7" data-completed="5"' in weeks
    approvers = html.split('data-testid="chart-slowest-approvers"', 1)[1].split("</svg>", 1)[0]
    assert "3.5 h (2 decisions)" in approvers and "2.0 h (3 decisions)" in approvers
    assert "<script" not in html


def test_bad_periods_are_refused_naming_the_field(app, seeded, login):
    tenant, _ = seeded
    admin = login(tenant.username("admin"))
    resp = admin.get(f"/t/{tenant.slug}/admin/analytics/?since=yesterday")
    assert resp.status_code == 400 and "since" in text_of(resp)
    client = fresh_client(app)
    token = api_token(client, tenant.username("admin"), tenant.slug)
    bad = client.get("/api/v1/metrics/?since=2026-06-10&until=2026-06-01", headers=auth(token))
    assert bad.status_code == 400 and bad.get_json()["field"] == "until"


def test_analytics_are_isolated_between_tenants(app, seeded, tenant_factory, login):
    other = tenant_factory()
    client = fresh_client(app)
    token = api_token(client, other.username("admin"), other.slug)
    body = client.get(f"/api/v1/metrics/?{PERIOD}", headers=auth(token)).get_json()
    assert body["total_requests"] == 0 and body["analytics"]["workflows"] == []
    assert body["analytics"]["slowest_approvers"] == []
    html = text_of(login(other.username("admin")).get(f"/t/{other.slug}/admin/analytics/?{PERIOD}"))
    assert _figure(html, "totals", "total") == "0"
    # Another tenant's admin cannot open this tenant's dashboard at all.
    tenant, _ = seeded
    assert (
        login(other.username("admin")).get(f"/t/{tenant.slug}/admin/analytics/").status_code == 404
    )


def test_only_admins_see_the_dashboard(seeded, login):
    tenant, _ = seeded
    manager = login(tenant.username("manager"))
    assert manager.get(f"/t/{tenant.slug}/admin/analytics/").status_code in (403, 404)
