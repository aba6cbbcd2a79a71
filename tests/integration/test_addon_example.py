"""The specification's Quick Start (examples/expense_app) on real PostgreSQL."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from flask import g

from signoff.addon import AddonLoadError, addon
from signoff.workflow.actions import Refused

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "example-password-123"


@pytest.fixture(scope="module")
def example(database, redis_url):
    with database.connect("owner") as conn:
        conn.execute((ROOT / "examples/expense_app/schema.sql").read_text())
        conn.commit()
    from examples.expense_app.app import create_app

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database.app_url.render_as_string(hide_password=False),
            "SECRET_KEY": "example-secret-key-0123456789abcdef",
            "WTF_CSRF_ENABLED": False,
            "FAB_APPROVAL_TENANT_SLUG": "example-host",
        }
    )
    with app.app_context():
        sm = app.appbuilder.sm
        users = {}
        for name, roles in {
            "emp": [],
            "mgr": ["Manager"],
            "fin": ["Finance_Manager"],
        }.items():
            role_objs = [sm.find_role(r) or sm.add_role(r) for r in roles] or [
                sm.find_role("Public")
            ]
            user = sm.find_user(username=f"ex-{name}") or sm.add_user(
                f"ex-{name}",
                name,
                "Example",
                f"{name}@example-host.test",
                role_objs,
                password=PASSWORD,
            )
            users[name] = user.id
        addon(app).sync_members()
    app.example_users = users
    return app


def as_user(app, user_id):
    ctx = app.test_request_context("/")
    ctx.push()
    g.user = app.appbuilder.sm.get_user_by_id(user_id)
    return ctx


def test_quick_start_expense_report_goes_through_both_steps(example):
    from examples.expense_app.app import ExpenseReport
    from signoff.workflow.manager import ApprovalWorkflowManager

    users = example.example_users
    ctx = as_user(example, users["emp"])
    try:
        session = example.appbuilder.session
        report = ExpenseReport(amount=Decimal("2500.00"), description="Conference")
        session.add(report)
        session.commit()
        assert report.submit_for_approval() is True
        manager = ApprovalWorkflowManager(example.appbuilder)
        assert manager.status_of(report) == "pending"
        with pytest.raises(Refused) as info:
            manager.approve_instance(report, 0)  # the requester cannot approve
        assert info.value.code == "self_approval"
    finally:
        ctx.pop()

    ctx = as_user(example, users["mgr"])
    try:
        assert manager.approve_instance(report, 0, comments="fine") is True
    finally:
        ctx.pop()

    ctx = as_user(example, users["fin"])
    try:
        with pytest.raises(Refused) as info:
            manager.approve_instance(report, 1)
        assert info.value.code == "mfa_required"  # the spec's requires_mfa: True
        history = manager.get_approval_history(report)
        assert [(h["step"], h["verdict"]) for h in history] == [(0, "approve")]
        metrics = manager.get_metrics()
        assert metrics["total_requests"] >= 1 and metrics["pending"] >= 1
        health = manager.health_check()
        assert health["postgresql"]["status"] == "ok"
    finally:
        ctx.pop()


def test_small_amount_needs_no_workflow_and_pending_view_lists_items(example):
    from examples.expense_app.app import ExpenseReport

    users = example.example_users
    ctx = as_user(example, users["emp"])
    try:
        session = example.appbuilder.session
        report = ExpenseReport(amount=Decimal("20.00"), description="Coffee")
        session.add(report)
        session.commit()
        assert report.submit_for_approval() is True
        assert report.status == "approved"
        big = ExpenseReport(amount=Decimal("700.00"), description="Flight")
        session.add(big)
        session.commit()
        big.submit_for_approval()
    finally:
        ctx.pop()
    client = example.test_client()
    resp = client.post("/login/", data={"username": "ex-mgr", "password": PASSWORD})
    assert resp.status_code == 302
    page = client.get("/approvals/pending/")
    assert page.status_code == 200
    assert "ExpenseReport" in page.get_data(as_text=True)


def test_addon_failure_is_loud():
    from flask import Flask
    from flask_appbuilder import AppBuilder
    from flask_appbuilder.models.sqla.base import SQLA

    app = Flask("broken")
    app.config.update(
        SECRET_KEY="x",
        SQLALCHEMY_DATABASE_URI="sqlite://",
        FAB_CREATE_DB=False,
        ADDON_MANAGERS=["signoff.addon.ApprovalWorkflowAddonManager"],
    )
    db = SQLA(app)
    with app.app_context(), pytest.raises(AddonLoadError, match="PostgreSQL"):
        AppBuilder(app, db.session)

    app2 = Flask("broken2")
    app2.config.update(
        SECRET_KEY="x",
        SQLALCHEMY_DATABASE_URI="sqlite://",
        FAB_CREATE_DB=False,
        FAB_APPROVAL_WORKFLOWS={"w": {"name": "W", "steps": [{"name": "A", "pattern": "nope"}]}},
        ADDON_MANAGERS=["signoff.addon.ApprovalWorkflowAddonManager"],
    )
    db2 = SQLA(app2)
    with app2.app_context(), pytest.raises(AddonLoadError, match="FAB_APPROVAL_WORKFLOWS"):
        AppBuilder(app2, db2.session)


def _host_app(database, addon_managers):
    from flask import Flask
    from flask_appbuilder import AppBuilder
    from flask_appbuilder.models.sqla.base import SQLA

    app = Flask("host")
    app.config.update(
        SECRET_KEY="host-secret-key-0123456789abcdef",
        SQLALCHEMY_DATABASE_URI=database.app_url.render_as_string(hide_password=False),
        FAB_CREATE_DB=False,
        FAB_APPROVAL_TENANT_SLUG="example-host",
        FAB_APPROVAL_WORKFLOWS={
            "expense_approval": {
                "name": "Expense",
                "steps": [{"name": "Manager Approval", "required_role": "Manager"}],
            }
        },
        ADDON_MANAGERS=addon_managers,
    )
    db = SQLA(app)
    with app.app_context():
        AppBuilder(app, db.session)
    return app


def test_addon_loads_from_addon_managers(example, database):
    """The ADDON_MANAGERS path (not add_addon_manager): the add-on registers itself."""
    app = _host_app(database, ["signoff.addon.ApprovalWorkflowAddonManager"])
    with app.app_context():
        loaded = addon(app)
        assert "signoff.addon.ApprovalWorkflowAddonManager" in app.appbuilder.addon_managers
        assert loaded.tenant_id is not None


def test_a_misspelled_addon_managers_entry_fails_loudly_at_first_use(example, database, caplog):
    from signoff.workflow.manager import ApprovalWorkflowManager

    app = _host_app(database, ["signoff.addon.ApprovalWorkflowAddonManagr"])
    # FAB itself only logs the import error and starts without the add-on...
    assert "ApprovalWorkflowAddonManagr" in caplog.text
    with app.app_context():
        # ...so the first use says what is wrong instead of failing obscurely.
        with pytest.raises(AddonLoadError, match="ADDON_MANAGERS"):
            addon(app)
        with app.test_request_context("/"), pytest.raises(AddonLoadError, match="ADDON_MANAGERS"):
            ApprovalWorkflowManager(app.appbuilder).get_metrics()
