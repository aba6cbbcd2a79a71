"""Issue 15 item 1, "if a workflow says so, for its auditors": a workflow's
``auditors: [role, ...]`` opens the all-requests page, read-only and restricted to
that workflow, to the members of those roles (the list and the CSV alike). Anyone
else who is not an admin gets 403; another tenant sees none of these requests."""

from __future__ import annotations

import csv
import io
import uuid

import pytest

from tests.fixtures.workflows import spec_expense
from tests.integration.views.conftest import submit, text_of
from tests.integration.workflow.conftest import actor, in_tenant, save


@pytest.fixture(scope="module")
def audited(app, tenant_factory):
    """Expense requests audited by Finance_Manager; a travel request nobody audits."""
    tenant = tenant_factory()
    save(app, tenant, "expense_approval", spec_expense(auditors=["Finance_Manager"]))
    save(app, tenant, "travel", spec_expense(name="Travel"))
    marker = f"zq{uuid.uuid4().hex[:8]}"
    submit(app, tenant, "expense_approval", {"amount": 500, "vendor": marker}, title="Audited one")
    submit(app, tenant, "expense_approval", {"amount": 700}, title="Audited two")
    submit(app, tenant, "travel", {"amount": 600, "vendor": marker}, title="Not audited")
    return tenant, marker


def _page(client, tenant, query: str = "") -> str:
    resp = client.get(f"/t/{tenant.slug}/admin/requests/?{query}")
    assert resp.status_code == 200, resp.status_code
    return text_of(resp)


def test_an_auditor_sees_only_their_workflows_read_only(audited, login):
    tenant, marker = audited
    finance = login(tenant.username("finance"))
    html = _page(finance, tenant)
    assert "Requests you audit" in html and 'data-testid="auditor-note"' in html
    assert "Audited one" in html and "Audited two" in html and "Not audited" not in html
    # Read-only: each title links the request page (read-only for them, see
    # test_auditor_request_detail.py), no decide buttons, and none of the admin tabs.
    table = html.split('data-testid="requests"', 1)[1].split("</table>", 1)[0]
    assert table.count(f'href="/t/{tenant.slug}/requests/') == 2
    assert 'name="verdict"' not in html and '<form method="post"' not in html
    assert "/admin/analytics" not in html
    # Search and an explicit workflow filter stay inside the audited workflows.
    found = _page(finance, tenant, f"q={marker}")
    assert "Audited one" in found and "Not audited" not in found
    assert "no-requests" in _page(finance, tenant, "workflow=travel")
    # The navigation links the page for them.
    assert 'data-testid="audit-link"' in text_of(finance.get(f"/t/{tenant.slug}/"))


def test_an_auditors_csv_has_only_their_workflows(audited, login):
    tenant, marker = audited
    finance = login(tenant.username("finance"))
    resp = finance.get(f"/t/{tenant.slug}/admin/requests/export.csv?sort=title")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert [r["title"] for r in rows] == ["Audited one", "Audited two"]
    assert {r["workflow"] for r in rows} == {"expense_approval"}
    searched = finance.get(f"/t/{tenant.slug}/admin/requests/export.csv?q={marker}")
    assert [r["title"] for r in csv.DictReader(io.StringIO(searched.get_data(as_text=True)))] == [
        "Audited one"
    ]


def test_admins_still_see_every_workflow(audited, login):
    tenant, _ = audited
    html = _page(login(tenant.username("admin")), tenant)
    assert "All requests" in html and "Not audited" in html and "Audited one" in html


def test_members_who_audit_nothing_get_403(audited, login):
    tenant, _ = audited
    for who in ("bob", "manager"):
        client = login(tenant.username(who))
        assert client.get(f"/t/{tenant.slug}/admin/requests/").status_code == 403
        assert client.get(f"/t/{tenant.slug}/admin/requests/export.csv").status_code == 403
        assert 'data-testid="audit-link"' not in text_of(client.get(f"/t/{tenant.slug}/"))


def test_another_tenants_auditor_sees_nothing_of_this_tenant(audited, app, tenant_factory, login):
    tenant, marker = audited
    other = tenant_factory()
    save(app, other, "expense_approval", spec_expense(auditors=["Finance_Manager"]))
    finance = login(other.username("finance"))
    html = _page(finance, other, f"q={marker}")
    assert "no-requests" in html and "Audited one" not in html
    assert "no-requests" in _page(finance, other)
    export = finance.get(f"/t/{other.slug}/admin/requests/export.csv?q={marker}")
    assert export.status_code == 200 and marker not in export.get_data(as_text=True)
    assert finance.get(f"/t/{tenant.slug}/admin/requests/").status_code == 404
    assert finance.get(f"/t/{tenant.slug}/admin/requests/export.csv").status_code == 404


def test_auditors_naming_an_unknown_role_are_refused_when_saved(audited, app):
    from signoff.workflow.actions import do_save_workflow
    from signoff.workflow.errors import DefinitionError

    tenant, _ = audited
    with in_tenant(app, tenant) as session, pytest.raises(DefinitionError) as refused:
        do_save_workflow(
            session,
            actor=actor(tenant, "admin"),
            key="expense_approval",
            definition=spec_expense(auditors=["Finance_Managr"]),
            check_tenant=True,
        )
    [error] = refused.value.errors
    assert error.path == "auditors[0]"
    assert "no role 'Finance_Managr'" in error.message and "Finance_Manager" in error.message


def test_auditors_must_be_a_list_of_role_names(app):
    from signoff.workflow.definitions import parse_definition
    from signoff.workflow.errors import DefinitionError

    with pytest.raises(DefinitionError) as refused:
        parse_definition("expense_approval", spec_expense(auditors="Finance_Manager"))
    assert [e.path for e in refused.value.errors] == ["auditors"]
    defn = parse_definition("expense_approval", spec_expense(auditors=["Finance_Manager"]))
    assert defn.auditors == ("Finance_Manager",)
