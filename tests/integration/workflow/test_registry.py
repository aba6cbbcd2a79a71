"""Definition sources, the per-tenant Redis cache, and manifests with workflows."""

from __future__ import annotations

import redis as redis_lib
import yaml

from signoff.workflow import registry
from tests.conftest import app_config
from tests.fixtures.workflows import spec_expense
from tests.integration.workflow.conftest import in_tenant, save

PLATFORM = {"name": "Platform expense", "steps": [{"name": "Boss", "required_role": "Manager"}]}


def test_precedence_platform_then_config_tenant_then_saved(
    database, redis_url, redis_prefix, tenant_factory
):
    from signoff.app import create_app

    t = tenant_factory()
    other = tenant_factory()
    app = create_app(
        app_config(
            database,
            redis_url,
            redis_prefix,
            FAB_APPROVAL_WORKFLOWS={"expense_approval": PLATFORM},
            FAB_APPROVAL_TENANT_WORKFLOWS={t.slug: {"expense_approval": spec_expense()}},
        )
    )
    with in_tenant(app, t) as s:
        eff = registry.get_effective(s, t.id, "expense_approval")
        assert (eff.source, eff.raw["name"]) == ("config", "Expense Approval")
    with in_tenant(app, other) as s:
        eff = registry.get_effective(s, other.id, "expense_approval")
        assert (eff.source, eff.raw["name"]) == ("platform", "Platform expense")
    save(app, t, "expense_approval", spec_expense(name="Saved by tenant"))
    with in_tenant(app, t) as s:
        eff = registry.get_effective(s, t.id, "expense_approval")
        assert (eff.source, eff.version, eff.raw["name"]) == ("tenant", 1, "Saved by tenant")
    with in_tenant(app, other) as s:
        assert registry.get_effective(s, other.id, "expense_approval").source == "platform"


def test_saved_override_is_visible_at_once_in_another_process(
    database, redis_url, redis_prefix, tenant_factory
):
    """Two app instances share Redis like two gunicorn workers: no stale read after a save."""
    from signoff.app import create_app

    t = tenant_factory()
    one = create_app(app_config(database, redis_url, redis_prefix))
    two = create_app(app_config(database, redis_url, redis_prefix))
    save(
        one, t, "leave", {"name": "Leave v1", "steps": [{"name": "M", "required_role": "Manager"}]}
    )
    with in_tenant(two, t) as s:
        assert registry.get_effective(s, t.id, "leave").raw["name"] == "Leave v1"  # now cached
    save(
        one, t, "leave", {"name": "Leave v2", "steps": [{"name": "M", "required_role": "Manager"}]}
    )
    with in_tenant(two, t) as s:
        assert registry.get_effective(s, t.id, "leave").raw["name"] == "Leave v2"


def test_cache_keys_carry_the_tenant_and_never_cross(app, redis_url, redis_prefix, tenant_factory):
    a, b = tenant_factory(), tenant_factory()
    save(app, a, "only_a", {"name": "A's", "steps": [{"name": "M", "required_role": "Manager"}]})
    with in_tenant(app, a) as s:
        assert "only_a" in registry.effective_workflows(s, a.id)
    with in_tenant(app, b) as s:
        assert "only_a" not in registry.effective_workflows(s, b.id)
    client = redis_lib.Redis.from_url(redis_url)
    keys = [k.decode() for k in client.scan_iter(match=f"{redis_prefix}cache:*")]
    client.close()
    workflow_keys = [k for k in keys if k.endswith(":workflows")]
    assert any(str(a.id) in k for k in workflow_keys)
    assert any(str(b.id) in k for k in workflow_keys)
    # t:<tenant>:<generation>:<config digest>:<slug>:<name>, one tenant per key.
    for tenant in (a, b):
        mine = [k for k in workflow_keys if f":t:{tenant.id}:" in k]
        assert mine and all(k.endswith(f":{tenant.slug}:workflows") for k in mine)
    assert not [k for k in keys if ":gen:" in k]


def test_a_poisoned_cache_entry_of_one_tenant_cannot_serve_another(app, redis_url, tenant_factory):
    """Even a wrong value in Redis under B's key would be B's: keys are per tenant, and
    the request is still checked under RLS when it pins its version."""
    a, b = tenant_factory(), tenant_factory()
    save(
        app,
        a,
        "secret_flow",
        {"name": "A only", "steps": [{"name": "M", "required_role": "Manager"}]},
    )
    with in_tenant(app, b) as s:
        assert registry.get_effective(s, b.id, "secret_flow") is None


def test_redis_down_falls_back_to_postgresql(database, redis_prefix, tenant_factory):
    from signoff.app import create_app

    t = tenant_factory()
    dead = create_app(app_config(database, "redis://127.0.0.1:1/0", redis_prefix))
    save(
        dead,
        t,
        "offline",
        {"name": "Offline", "steps": [{"name": "M", "required_role": "Manager"}]},
    )
    with in_tenant(dead, t) as s:
        assert registry.get_effective(s, t.id, "offline").raw["name"] == "Offline"


def test_manifest_with_workflows_and_rules_applies_idempotently_and_exports(app, tenant_factory):
    from signoff.extensions import db
    from signoff.provisioning.manifest import apply_manifest, export_manifest

    t = tenant_factory()
    manifest = {
        "tenant": {"slug": t.slug, "name": f"Tenant {t.slug}"},
        "workflows": {"expense_approval": spec_expense()},
        "rules": [
            {
                "name": "Big",
                "workflow": "expense_approval",
                "priority": 5,
                "conditions": [{"field": "input_data.amount", "operator": ">", "value": 5000}],
                "approvers": [{"type": "role", "role": "CFO", "required": True}],
            }
        ],
    }
    with app.app_context():
        first = apply_manifest(app, db.session, manifest)
        assert "workflow expense_approval v1" in first.updated
        assert "rule Big" in first.created
        second = apply_manifest(app, db.session, manifest)
        assert not second.changed(), second
        exported = export_manifest(app, db.session, t.slug)
    assert set(exported["workflows"]) == {"expense_approval"}
    assert exported["rules"][0]["name"] == "Big" and exported["rules"][0]["workflow"] == (
        "expense_approval"
    )
    # The export applies back unchanged (round trip through YAML).
    again = yaml.safe_load(yaml.safe_dump(exported))
    with app.app_context():
        assert not apply_manifest(app, db.session, again).changed()
        db.session.remove()


def test_rule_added_by_manifest_adds_the_cfo_step(app, tenant_factory):
    from signoff.extensions import db
    from signoff.provisioning.manifest import apply_manifest
    from signoff.workflow import actions as A
    from tests.integration.workflow.conftest import actor

    t = tenant_factory()
    with app.app_context():
        apply_manifest(
            app,
            db.session,
            {
                "tenant": {"slug": t.slug, "name": "x"},
                "workflows": {"expense_approval": spec_expense()},
                "rules": [
                    {
                        "name": "Big",
                        "workflow": "expense_approval",
                        "priority": 5,
                        "conditions": [
                            {"field": "input_data.amount", "operator": ">", "value": 5000}
                        ],
                        "approvers": [{"type": "role", "role": "CFO", "required": True}],
                    }
                ],
            },
        )
        db.session.remove()
    with in_tenant(app, t) as s:
        res = A.do_submit(
            s,
            actor=actor(t, "alice"),
            workflow_key="expense_approval",
            input_data={"amount": "9000"},
        )
        A.do_approve(s, actor=actor(t, "manager"), request_id=res.request_id, step_index=0)
        A.do_approve(
            s, actor=actor(t, "finance", mfa=True), request_id=res.request_id, step_index=1
        )
        last = A.do_approve(s, actor=actor(t, "cfo"), request_id=res.request_id, step_index=2)
        assert last.status == "approved"
