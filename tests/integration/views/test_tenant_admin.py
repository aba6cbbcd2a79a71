"""Tenant admin pages: workflows (YAML edit, errors by path, versions, diff, SVG), rules,
members, branding, usage, audit."""

from __future__ import annotations

import csv
import io

from tests.integration.views.conftest import strip_tags, submit, text_of


def _rows(database, sql, *args):
    with database.connect("admin") as conn:
        return conn.execute(sql, args).fetchall()


def test_workflow_list_show_diagram_and_versions(portal_tenant, login):
    admin = login(portal_tenant.username("admin"))
    base = f"/t/{portal_tenant.slug}/admin/workflows"
    html = text_of(admin.get(f"{base}/"))
    assert "Expense Approval" in html and "purchase_request" in html
    page = admin.get(f"{base}/expense_approval/")
    assert page.status_code == 200
    html = text_of(page)
    svg = html.split("<svg", 1)[1].split("</svg>", 1)[0]
    assert "Manager Approval" in svg and "Finance Approval" in svg
    assert "role Finance_Manager" in svg and ">MFA<" in svg and "auto ≤ 1000" in svg
    assert "Auto-approved if amount ≤ 100 or requester is Senior_Manager" in svg
    assert "<script" not in html.split("</head>", 1)[1]  # no JavaScript needed
    assert "name: Expense Approval" in html  # the YAML text


def test_edit_shows_errors_next_to_their_paths_then_saves_a_version(database, portal_tenant, login):
    admin = login(portal_tenant.username("admin"))
    base = f"/t/{portal_tenant.slug}/admin/workflows"
    form = text_of(admin.get(f"{base}/purchase_request/edit"))
    assert '<textarea class="code" id="definition"' in form

    broken = "name: Purchase\nsteps: [unclosed\n"
    resp = admin.post(f"{base}/purchase_request/edit", data={"definition": broken})
    assert resp.status_code == 422
    assert "not valid YAML" in text_of(resp) and "(line" in text_of(resp)
    assert broken.replace("\n", "") in text_of(resp).replace("\n", "")  # the text is kept

    invalid = (
        "name: Purchase\n"
        "steps:\n"
        "  - name: Managers\n"
        "    pattern: quorum\n"
        "    approvers: [{type: role, role: Manager}]\n"
        "    quorum: 0\n"
        "  - name: Finance\n"
        "    required_role: Finance_Manager\n"
        "    requires_mfa: maybe\n"
        "fields:\n"
        "  - {name: amount, type: money}\n"
    )
    resp = admin.post(f"{base}/purchase_request/edit", data={"definition": invalid})
    assert resp.status_code == 422
    errors = text_of(resp).split('data-testid="definition-errors"')[1]
    for path in ("steps[0].quorum", "steps[1].requires_mfa", "fields[0].type"):
        assert f"<dt>{path}</dt>" in errors, path
    ((before,),) = _rows(
        database,
        "SELECT current_version FROM workflow WHERE tenant_id = %s AND key = %s",
        portal_tenant.id,
        "purchase_request",
    )

    valid = (
        "name: Purchase Request\n"
        "steps:\n"
        "  - name: Two managers\n"
        "    pattern: quorum\n"
        "    quorum: 2\n"
        "    approvers: [{type: role, role: Manager}]\n"
        "  - {name: Finance, required_role: Finance_Manager, requires_mfa: true}\n"
        "fields:\n"
        "  - {name: item, type: string, required: true}\n"
        "  - {name: amount, type: decimal, required: true, min: 0}\n"
    )
    resp = admin.post(f"{base}/purchase_request/edit", data={"definition": valid})
    assert resp.status_code == 302
    ((after,),) = _rows(
        database,
        "SELECT current_version FROM workflow WHERE tenant_id = %s AND key = %s",
        portal_tenant.id,
        "purchase_request",
    )
    assert after == before + 1
    show = text_of(admin.get(f"{base}/purchase_request/"))
    assert "quorum 2" in show and f"v{after}" in show
    diff = admin.get(f"{base}/purchase_request/diff?a={before}&b={after}")
    assert diff.status_code == 200
    html = text_of(diff)
    assert '<span class="add">+  - name: Two managers</span>' in html
    assert '<span class="del">-  - name: Manager Approval</span>' in html
    assert admin.get(f"{base}/purchase_request/versions/{before}").status_code == 200
    assert admin.get(f"{base}/purchase_request/versions/999").status_code == 404
    events = _rows(
        database,
        "SELECT payload->>'version' FROM audit_event WHERE tenant_id = %s "
        "AND action = 'workflow.version_saved' AND object_id = 'purchase_request'",
        portal_tenant.id,
    )
    assert (str(after),) in events


def test_new_workflow_and_markup_in_names_is_escaped(portal_tenant, login):
    admin = login(portal_tenant.username("admin"))
    base = f"/t/{portal_tenant.slug}/admin/workflows"
    bad_key = admin.post(f"{base}/new", data={"key": "Bad-Key", "definition": "name: x"})
    assert bad_key.status_code == 422 and "lowercase letters" in text_of(bad_key)
    definition = (
        'name: "<script>alert(1)</script> Travel"\n'
        "steps:\n"
        '  - name: "<img src=x onerror=alert(1)>"\n'
        "    required_role: Manager\n"
    )
    resp = admin.post(f"{base}/new", data={"key": "travel", "definition": definition})
    assert resp.status_code == 302
    html = text_of(admin.get(f"{base}/travel/"))
    assert "<script>alert(1)</script>" not in html
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    taken = admin.post(f"{base}/new", data={"key": "travel", "definition": definition})
    assert taken.status_code == 422 and "exists" in text_of(taken)
    # Members see the new workflow in the portal.
    assert "Travel" in text_of(admin.get(f"/t/{portal_tenant.slug}/new"))


def test_rules_crud_with_errors(database, portal_tenant, login):
    admin = login(portal_tenant.username("admin"))
    base = f"/t/{portal_tenant.slug}/admin/rules"
    bad = admin.post(
        f"{base}/new",
        data={
            "definition": "name: Big\nconditions:\n  - {field: input_data.amount, operator: gt, "
            "value: 1}\napprovers: [{type: role, role: CFO}]\n",
            "active": "on",
        },
    )
    assert bad.status_code == 422
    assert "rules[0].conditions[0].operator" in text_of(bad)
    good = admin.post(
        f"{base}/new",
        data={
            "definition": "name: Big\npriority: 10\nconditions:\n  - {field: input_data.amount, "
            "operator: '>', value: 5000}\napprovers: [{type: role, role: CFO}]\n",
            "workflow": "expense_approval",
            "active": "on",
        },
    )
    assert good.status_code == 302
    html = text_of(admin.get(f"{base}/"))
    assert "Big" in html and "workflow expense_approval" in html
    ((rule_id,),) = _rows(
        database, "SELECT id FROM approval_rule WHERE tenant_id = %s", portal_tenant.id
    )
    assert admin.get(f"{base}/{rule_id}/edit").status_code == 200
    assert admin.post(f"{base}/{rule_id}/delete").status_code == 302
    assert _rows(database, "SELECT 1 FROM approval_rule WHERE id = %s", rule_id) == []
    actions = {
        r[0]
        for r in _rows(
            database,
            "SELECT action FROM audit_event WHERE tenant_id = %s AND object_type = 'approval_rule'",
            portal_tenant.id,
        )
    }
    assert actions == {"rule.saved", "rule.deleted"}


def test_members_roles_manager_and_deactivation(app, database, tenant_factory, login):
    t = tenant_factory()
    admin = login(t.username("admin"))
    base = f"/t/{t.slug}/admin"
    html = text_of(admin.get(f"{base}/members/"))
    assert f"alice@{t.slug}.example" in html
    ids = dict(
        _rows(
            database,
            "SELECT u.username, m.id FROM membership m JOIN ab_user u ON u.id = m.user_id "
            "WHERE m.tenant_id = %s",
            t.id,
        )
    )
    alice_id, admin_id = ids[t.username("alice")], ids[t.username("admin")]
    resp = admin.post(
        f"{base}/members/{alice_id}",
        data={
            "roles": ["Requester", "Manager"],
            "manager": str(ids[t.username("manager")]),
            "active": "on",
        },
    )
    assert resp.status_code == 302
    alice = login(t.username("alice"))
    assert alice.get(f"/t/{t.slug}/").status_code == 200
    # Deactivated: the tenant is gone for her (404, like any outsider).
    admin.post(f"{base}/members/{alice_id}", data={"roles": ["Requester"]})
    assert alice.get(f"/t/{t.slug}/").status_code == 404
    # The admin cannot demote or deactivate themselves.
    resp = admin.post(f"{base}/members/{admin_id}", data={"roles": ["Requester"], "active": "on"})
    assert resp.status_code == 200 and "cannot remove your own Admin role" in text_of(resp)
    assert _rows(
        database,
        "SELECT 1 FROM audit_event WHERE tenant_id = %s AND action = 'member.updated'",
        t.id,
    )


def test_branding_is_used_by_the_portal(tenant_factory, login):
    t = tenant_factory()
    admin = login(t.username("admin"))
    bad = admin.post(
        f"/t/{t.slug}/admin/branding",
        data={"name": "Acme", "accent_color": "red;}</style><script>"},
    )
    assert bad.status_code == 422 and "Use a colour written as" in text_of(bad)
    admin.post(f"/t/{t.slug}/admin/branding", data={"name": "Acme Ltd", "accent_color": "#AA3300"})
    alice = login(t.username("alice"))
    html = text_of(alice.get(f"/t/{t.slug}/"))
    assert "--accent: #aa3300;" in html and "Acme Ltd" in html


def test_overview_counts_and_delegations_list(app, portal_tenant, login):
    submit(app, portal_tenant, "purchase_request", {"item": "Pens", "amount": "40"})
    admin = login(portal_tenant.username("admin"))
    html = strip_tags(text_of(admin.get(f"/t/{portal_tenant.slug}/admin/")))
    assert "7 active members" in html
    assert "3 workflows" in html
    assert "1 requests in total" in html
    assert admin.get(f"/t/{portal_tenant.slug}/admin/delegations/").status_code == 200


def test_audit_status_and_report_download(app, portal_tenant, login):
    submit(app, portal_tenant, "purchase_request", {"item": "Pens", "amount": "40"})
    admin = login(portal_tenant.username("admin"))
    base = f"/t/{portal_tenant.slug}/admin/audit"
    html = text_of(admin.get(f"{base}/"))
    assert "intact" in html and "chain ok" in html
    resp = admin.get(f"{base}/report?start=2000-01-01&end=2100-01-01&format=csv")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in resp.headers["Content-Disposition"]
    body = resp.get_data(as_text=True)
    rows = list(
        csv.reader(
            io.StringIO("\n".join(line for line in body.splitlines() if not line.startswith("#")))
        )
    )
    assert any("request.submitted" in row for row in rows)
    pdf = admin.get(f"{base}/report?start=2000-01-01&end=2100-01-01&format=pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    assert admin.get(f"{base}/report?start=x&end=y").status_code == 302


def test_admin_pages_need_the_admin_role(portal_tenant, login):
    alice = login(portal_tenant.username("alice"))
    base = f"/t/{portal_tenant.slug}/admin"
    for path in (
        "/",
        "/members/",
        "/workflows/",
        "/workflows/expense_approval/edit",
        "/rules/",
        "/audit/",
        "/branding",
        "/delegations/",
    ):
        assert alice.get(base + path).status_code == 403, path
    assert alice.post(f"{base}/workflows/expense_approval/edit", data={}).status_code == 403
