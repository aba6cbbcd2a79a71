"""/api/v1/audit (verify, report) and /api/v1/metrics: tenant Admin only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.integration.api.conftest import assert_error


def test_verify_reports_an_intact_chain(api_a):
    api_a.submit(500)
    resp = api_a.get("/api/v1/audit/verify")
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["ok"] is True and body["chain"]["ok"] is True
    assert body["chain"]["rows_checked"] >= 1 and len(body["chain"]["head_hash"]) == 64
    assert_error(api_a.get("/api/v1/audit/verify", "manager"), 403)


def test_report_downloads_as_pdf_and_csv(api_a):
    api_a.submit(500)
    today = datetime.now(UTC).date()
    span = f"start={(today - timedelta(days=1)).isoformat()}&end={today.isoformat()}"
    csv = api_a.get(f"/api/v1/audit/report?{span}&format=csv")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    assert "request.submitted" in csv.get_data(as_text=True)
    assert "attachment" in csv.headers["Content-Disposition"]
    pdf = api_a.get(f"/api/v1/audit/report?{span}")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.get_data().startswith(b"%PDF")
    assert_error(api_a.get(f"/api/v1/audit/report?{span}", "alice"), 403)
    assert_error(
        api_a.get("/api/v1/audit/report?start=2024-02-01&end=2024-01-01"), 400, "invalid", "end"
    )
    assert_error(
        api_a.get("/api/v1/audit/report?start=yesterday&end=2024-01-01"), 400, field="start"
    )
    assert_error(api_a.get(f"/api/v1/audit/report?{span}&format=docx"), 400, field="format")


def test_metrics(api_a):
    rid = api_a.submit(500)
    api_a.post(f"/api/v1/approval-workflow/approve/{rid}/0", "manager")
    body = api_a.get("/api/v1/metrics/").get_json()
    assert body["total_requests"] >= 1 and body["total_approvals"] >= 1
    assert 0 <= body["approval_success_rate"] <= 1
    assert set(body) == {
        "total_requests",
        "total_approvals",
        "auto_approved",
        "pending",
        "avg_approval_time",
        "approval_success_rate",
        "escalation_rate",
        "period",
        "analytics",
    }
    assert_error(api_a.get("/api/v1/metrics/", "manager"), 403)
