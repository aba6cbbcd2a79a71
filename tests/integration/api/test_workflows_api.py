"""/api/v1/workflows: read, versions, authoring (Admin), validate, YAML export/import."""

from __future__ import annotations

import yaml

from tests.fixtures.workflows import spec_expense
from tests.integration.api.conftest import Api, assert_error, expense_tenant

WF = "/api/v1/workflows/"


def test_members_read_the_effective_workflows(api_a):
    listed = api_a.get(WF, "bob").get_json()
    wf = next(w for w in listed["result"] if w["key"] == "expense_approval")
    assert wf["name"] == "Expense Approval" and wf["source"] == "tenant" and wf["steps"] == 2
    assert wf["valid"] is True and wf["version"] >= 1
    detail = api_a.get(f"{WF}expense_approval", "bob").get_json()
    assert detail["definition"]["steps"][1]["requires_mfa"] is True
    assert_error(api_a.get(f"{WF}no_such_thing", "bob"), 404)
    # A NUL can name nothing: the input guard refuses it, naming the parameter.
    assert_error(api_a.get(f"{WF}bad%00key", "bob"), 400, "invalid", "key")


def test_admin_creates_versions_requests_keep_theirs(client, tenant_factory, app):
    t = expense_tenant(tenant_factory, app)
    api = Api(client, t)
    running = api.submit(5000)
    changed = spec_expense()
    changed["steps"][0]["name"] = "Line Manager"
    assert_error(
        api.post(f"{WF}expense_approval/versions", "manager", json={"definition": changed}), 403
    )
    resp = api.post(f"{WF}expense_approval/versions", json={"definition": changed})
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json() == {"key": "expense_approval", "version": 2, "created": True}
    same = api.post(f"{WF}expense_approval/versions", json={"definition": changed})
    assert same.status_code == 200 and same.get_json()["created"] is False
    versions = api.get(f"{WF}expense_approval/versions", "bob").get_json()
    assert [v["version"] for v in versions["result"]] == [2, 1]
    assert [v["current"] for v in versions["result"]] == [True, False]
    v1 = api.get(f"{WF}expense_approval/versions/1", "bob").get_json()
    assert v1["definition"]["steps"][0]["name"] == "Manager Approval"
    assert_error(api.get(f"{WF}expense_approval/versions/9", "bob"), 404)
    assert_error(api.get(f"{WF}expense_approval/versions/99999999999", "bob"), 404)
    # The running request stays on version 1; a new one uses version 2.
    assert api.get(f"/api/v1/requests/{running}", "alice").get_json()["version"] == 1
    new = api.submit(5000)
    detail = api.get(f"/api/v1/requests/{new}", "alice").get_json()
    assert detail["version"] == 2 and detail["steps"][0]["name"] == "Line Manager"


def test_invalid_definitions_are_422_with_every_path(api_a):
    bad = {"name": "", "steps": [{"name": "S", "pattern": "sometimes", "quorum": -1}], "colour": 1}
    body = assert_error(
        api_a.post(f"{WF}broken/versions", json={"definition": bad}), 422, "invalid_definition"
    )
    assert {"name", "colour"} <= set(body["errors"]) and any(
        p.startswith("steps[0]") for p in body["errors"]
    )
    assert_error(
        api_a.post(f"{WF}Bad-Key/versions", json={"definition": spec_expense()}), 422, field="key"
    )
    assert_error(
        api_a.post(f"{WF}export/versions", json={"definition": spec_expense()}), 422, field="key"
    )
    assert_error(api_a.post(f"{WF}ok_key/versions", json={}), 400, "invalid", "definition")


def test_validate_without_saving(api_a):
    ok = api_a.post(f"{WF}validate", "bob", json={"key": "trial", "definition": spec_expense()})
    assert ok.status_code == 200
    assert (
        ok.get_json()["valid"] is True and ok.get_json()["definition"]["name"] == "Expense Approval"
    )
    bad = api_a.post(f"{WF}validate", "bob", json={"definition": {"name": "x", "steps": []}})
    assert bad.status_code == 200
    assert bad.get_json()["valid"] is False and "steps" in bad.get_json()["errors"]
    assert bad.get_json()["definition"] is None
    assert_error(api_a.get(f"{WF}trial", "bob"), 404)
    assert_error(
        api_a.post(f"{WF}validate", "bob", json={"key": "x"}), 400, "invalid", "definition"
    )


def test_export_and_import_round_trip(client, tenant_factory, app):
    t = expense_tenant(tenant_factory, app)
    api = Api(client, t)
    assert_error(api.get(f"{WF}export", "manager"), 403)
    exported = api.get(f"{WF}export")
    assert exported.status_code == 200 and exported.mimetype == "application/yaml"
    assert "attachment" in exported.headers["Content-Disposition"]
    bundle = yaml.safe_load(exported.get_data(as_text=True))
    assert set(bundle) == {"workflows", "rules"} and "expense_approval" in bundle["workflows"]
    assert api.get(f"{WF}export?format=json").get_json() == bundle

    bundle["workflows"]["expense_approval"]["description"] = "Imported"
    bundle["workflows"]["travel"] = {
        "name": "Travel",
        "steps": [{"name": "M", "required_role": "Manager"}],
    }
    bundle["rules"] = [
        {
            "name": "Big spend",
            "priority": 10,
            "conditions": [{"field": "input_data.amount", "operator": ">", "value": 5000}],
            "approvers": [{"type": "role", "role": "CFO", "required": True}],
            "workflow": "expense_approval",
        }
    ]
    resp = api.post(f"{WF}import", data=yaml.safe_dump(bundle), content_type="application/yaml")
    assert resp.status_code == 200, resp.get_json()
    result = resp.get_json()
    assert result["workflows"]["travel"] == 1 and result["workflows"]["expense_approval"] == 2
    assert "rule Big spend" in result["created"]
    again = api.post(f"{WF}import", json=bundle)
    assert (
        again.status_code == 200
        and again.get_json()["created"] == []
        and again.get_json()["updated"] == []
    )
    assert api.get(f"{WF}expense_approval").get_json()["description"] == "Imported"
    reexported = yaml.safe_load(api.get(f"{WF}export").get_data(as_text=True))
    assert (
        reexported["rules"][0]["name"] == "Big spend"
        and reexported["rules"][0]["workflow"] == "expense_approval"
    )


def test_import_is_all_or_nothing_and_validated(client, tenant_factory, app):
    t = expense_tenant(tenant_factory, app)
    api = Api(client, t)
    bundle = {
        "workflows": {
            "good": {"name": "Good", "steps": [{"name": "M", "required_role": "Manager"}]},
            "bad": {"name": "Bad", "steps": "none"},
        }
    }
    body = assert_error(api.post(f"{WF}import", json=bundle), 422, "invalid_definition")
    assert any(p.startswith("workflows.bad") for p in body["errors"])
    assert_error(api.get(f"{WF}good"), 404)  # nothing was saved
    assert_error(api.post(f"{WF}import", json={"workflows": {"Bad Key": {}}}), 400, "invalid")
    assert_error(
        api.post(f"{WF}import", json={"rules": [{"name": "r"}]}), 422, "invalid_definition"
    )
    # YAML: malformed, aliases (no expansion bombs), not a mapping.
    assert_error(api.post(f"{WF}import", data="a: [", content_type="application/yaml"), 400)
    bomb = "a: &a [x, x]\nb: &b [*a, *a]\nworkflows: {}\n"
    assert_error(api.post(f"{WF}import", data=bomb, content_type="application/yaml"), 400)
    assert_error(api.post(f"{WF}import", data="- 1\n- 2\n", content_type="application/yaml"), 422)
    assert_error(api.post(f"{WF}import", data="x", content_type="text/plain"), 415)
    assert_error(api.post(f"{WF}import", "manager", json={}), 403)
