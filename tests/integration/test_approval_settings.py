"""Each ``FAB_APPROVAL_*`` key of the specification: its effect, or its refusal at start.

Refusals are checked where they stop an app: ``create_app`` (the Signoff app raises
``ConfigError``) and the add-on's constructor (a host app raises ``AddonLoadError``).
Keys whose effect other modules test:

- ``FAB_APPROVAL_RATE_LIMIT_WINDOW``, ``FAB_APPROVAL_MAX_APPROVALS_PER_WINDOW``,
  ``FAB_APPROVAL_RATE_LIMIT_EXEMPTIONS``: ``test_spec_snippets.py``
  (``test_rate_limit_snippet_raises_once_the_budget_is_spent``) and below;
- ``FAB_APPROVAL_MFA_TIMEOUT``: also ``security/test_mfa_api.py``;
- ``FAB_APPROVAL_EMAIL_NOTIFICATIONS``, ``FAB_APPROVAL_SLACK_NOTIFICATIONS``: below (in a
  host app), ``notifications/test_preferences.py``, ``notifications/test_slack.py``;
- ``FAB_APPROVAL_CACHE_CONFIG`` (the literal): ``test_spec_snippets.py``.
"""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from sqlalchemy import Column, Integer, Numeric, String

from signoff.errors import AddonLoadError, Refused
from signoff.workflow.settings import SettingsError, cache_config, check_settings
from tests.conftest import app_config
from tests.integration.test_spec_snippets import As, host_app, spec  # noqa: F401

pytestmark = pytest.mark.usefixtures("spec")


def saas_refuses(database, redis_url, redis_prefix, match: str, **config: Any) -> None:
    from signoff.app import ConfigError, create_app

    with pytest.raises(ConfigError, match=match):
        create_app(app_config(database, redis_url, redis_prefix, **config))


def addon_refuses(database, match: str, **config: Any) -> None:
    url = database.app_url.render_as_string(hide_password=False)
    with pytest.raises(AddonLoadError, match=match):
        host_app(url, config)


def test_enabled_false_switches_the_addon_off_and_is_refused_by_signoff(
    database, redis_url, redis_prefix
):
    from signoff.addon import addon
    from signoff.approval.workflow_manager import ApprovalWorkflowManager

    app = host_app(
        database.app_url.render_as_string(hide_password=False), {"FAB_APPROVAL_ENABLED": False}
    )
    with app.app_context():
        with pytest.raises(AddonLoadError, match="switched off"):
            addon(app)
        assert "ApprovalWorkflowView" not in app.blueprints
        with app.test_request_context("/"), pytest.raises(AddonLoadError, match="switched off"):
            ApprovalWorkflowManager(app.appbuilder).get_metrics()
    saas_refuses(
        database, redis_url, redis_prefix, "FAB_APPROVAL_ENABLED", FAB_APPROVAL_ENABLED=False
    )


def test_auto_create_permissions(database, redis_url, redis_prefix):
    url = database.app_url.render_as_string(hide_password=False)
    app = host_app(url, {"FAB_APPROVAL_AUTO_CREATE_PERMISSIONS": False})
    with app.app_context():
        sm = app.appbuilder.sm
        role = sm.find_role("Spec_Settings_Role") or sm.add_role("Spec_Settings_Role")
        app.extensions["signoff_addon"].grant_view_permissions()
        assert not sm.exist_permission_on_roles("ApprovalWorkflowView", "can_pending", [role.id])
    app = host_app(url, {"FAB_APPROVAL_AUTO_CREATE_PERMISSIONS": True})
    with app.app_context():
        app.extensions["signoff_addon"].grant_view_permissions()
        role = app.appbuilder.sm.find_role("Spec_Settings_Role")
        assert app.appbuilder.sm.exist_permission_on_roles(
            "ApprovalWorkflowView", "can_pending", [role.id]
        )
    saas_refuses(
        database,
        redis_url,
        redis_prefix,
        "signoff db upgrade",
        FAB_APPROVAL_AUTO_CREATE_PERMISSIONS=False,
    )


def test_max_approvals_zero_switches_the_budget_off(spec):  # noqa: F811
    from signoff.approval.security_validator import ApprovalSecurityValidator
    from signoff.limiter import SCOPE_DECISIONS, Rule, enforce

    app = spec["app"]
    app.config.update(FAB_APPROVAL_MAX_APPROVALS_PER_WINDOW=0)
    try:
        with As(spec, "mgr") as mgr:
            tenant = app.extensions["signoff_addon"].tenant_id
            rule = Rule(SCOPE_DECISIONS, "1 per 60 second", f"tenant:{tenant}:user:{mgr.id}")
            enforce([rule], always_open=True)
            assert ApprovalSecurityValidator(app.appbuilder).check_approval_rate_limit(mgr.id)
    finally:
        app.config.update(FAB_APPROVAL_MAX_APPROVALS_PER_WINDOW=20)
    with pytest.raises(SettingsError, match="FAB_APPROVAL_MAX_APPROVALS_PER_WINDOW"):
        check_settings({"FAB_APPROVAL_MAX_APPROVALS_PER_WINDOW": -1}, addon=True)
    with pytest.raises(SettingsError, match="FAB_APPROVAL_RATE_LIMIT_EXEMPTIONS"):
        check_settings({"FAB_APPROVAL_RATE_LIMIT_EXEMPTIONS": "Admin"}, addon=True)


def test_use_database_locking_false_is_refused(database, redis_url, redis_prefix):
    match = "FAB_APPROVAL_USE_DATABASE_LOCKING = False is refused.*cannot be switched off"
    addon_refuses(database, match, FAB_APPROVAL_USE_DATABASE_LOCKING=False)
    saas_refuses(database, redis_url, redis_prefix, match, FAB_APPROVAL_USE_DATABASE_LOCKING=False)


def test_lock_timeout_bounds_the_wait(spec, database):  # noqa: F811
    from signoff.approval.workflow_manager import ApprovalLockTimeout, ApprovalWorkflowManager

    app, db = spec["app"], spec["db"]
    with As(spec, "emp"):
        report = spec["ExpenseReport"](amount=Decimal("400.00"), description="Hotel")
        db.session.add(report)
        report.submit_for_approval()
        manager = ApprovalWorkflowManager(app.appbuilder)
        req = manager.request_for(report)
    app.config["FAB_APPROVAL_LOCK_TIMEOUT"] = 0.3
    holder = psycopg.connect(database.dsn("app"))
    try:
        holder.execute("SELECT set_config('app.tenant_id', %s, true)", (str(req.tenant_id),))
        holder.execute("SELECT * FROM signoff.request_lock(%s, 1000)", (req.id,))
        with As(spec, "mgr"):
            with (
                pytest.raises(ApprovalLockTimeout, match=r"within 0\.3 s"),
                manager.database_lock_for_approval(report),
            ):
                pytest.fail("ran without the lock")
            # A decision waits as long, then answers 409 locked.
            with pytest.raises(Exception) as info:
                manager.approve_instance(report, 0)
            assert getattr(info.value, "code", None) == "locked"
    finally:
        app.config["FAB_APPROVAL_LOCK_TIMEOUT"] = 10
        holder.rollback()
        holder.close()
    with pytest.raises(SettingsError, match="FAB_APPROVAL_LOCK_TIMEOUT"):
        check_settings({"FAB_APPROVAL_LOCK_TIMEOUT": 0}, addon=True)


def test_multi_tenant_false_is_refused_by_signoff(database, redis_url, redis_prefix):
    saas_refuses(
        database,
        redis_url,
        redis_prefix,
        "multi-tenant by construction",
        FAB_APPROVAL_MULTI_TENANT=False,
    )
    check_settings({"FAB_APPROVAL_MULTI_TENANT": False}, addon=True)  # one tenant anyway


def test_tenant_isolation_soft_is_refused(database, redis_url, redis_prefix):
    match = "isolation is never lowered"
    addon_refuses(database, match, FAB_APPROVAL_TENANT_ISOLATION="soft")
    saas_refuses(database, redis_url, redis_prefix, match, FAB_APPROVAL_TENANT_ISOLATION="soft")
    check_settings({"FAB_APPROVAL_TENANT_ISOLATION": "strict"}, addon=False)


def test_tenant_workflows_keys_must_be_slugs(database, redis_url, redis_prefix):
    from tests.fixtures.workflows import spec_expense

    saas_refuses(
        database,
        redis_url,
        redis_prefix,
        r"'tenant_1' can never match.*'tenant-1'",
        FAB_APPROVAL_TENANT_WORKFLOWS={"tenant_1": {"expense_approval": spec_expense()}},
    )
    check_settings(
        {"FAB_APPROVAL_TENANT_WORKFLOWS": {"tenant-1": {"expense_approval": spec_expense()}}},
        addon=False,
    )
    with pytest.raises(SettingsError, match=r"FAB_APPROVAL_TENANT_WORKFLOWS\['tenant-1'\]"):
        check_settings(
            {"FAB_APPROVAL_TENANT_WORKFLOWS": {"tenant-1": {"expense_approval": {"steps": []}}}},
            addon=False,
        )


def test_workflow_keys_are_validated_when_parsed(database, redis_url, redis_prefix):
    from tests.fixtures.workflows import spec_expense

    for bad in ("Expense-Approval", "expense.approval", "ExpenseApproval"):
        saas_refuses(
            database,
            redis_url,
            redis_prefix,
            "lowercase letters, digits and '_'",
            FAB_APPROVAL_WORKFLOWS={bad: spec_expense()},
        )
    addon_refuses(
        database,
        "FAB_APPROVAL_WORKFLOWS is invalid",
        FAB_APPROVAL_WORKFLOWS={"Expense-Approval": spec_expense()},
    )


def test_rules_are_checked_at_start():
    with pytest.raises(SettingsError, match="FAB_APPROVAL_RULES is invalid"):
        check_settings(
            {
                "FAB_APPROVAL_RULES": [
                    {"name": "R", "conditions": [{"field": "x", "operator": "~"}]}
                ]
            },
            addon=True,
        )


def test_debug_trace_logs_refusals_and_is_silent_when_off(spec, caplog):  # noqa: F811
    from signoff.approval.workflow_manager import ApprovalWorkflowManager

    app, db = spec["app"], spec["db"]
    with As(spec, "emp"):
        report = spec["ExpenseReport"](amount=Decimal("250.00"), description="Taxi")
        db.session.add(report)
        report.submit_for_approval()
        manager = ApprovalWorkflowManager(app.appbuilder)
        with caplog.at_level(logging.DEBUG, logger="signoff.approval"):
            app.config["FAB_APPROVAL_DEBUG_TRACE"] = False
            with pytest.raises(Refused):
                manager.approve_instance(report, 0)
            assert not [r for r in caplog.records if hasattr(r, "approval_trace")]
            app.config["FAB_APPROVAL_DEBUG_TRACE"] = True
            try:
                with pytest.raises(Refused):
                    manager.approve_instance(report, 0)
            finally:
                app.config["FAB_APPROVAL_DEBUG_TRACE"] = False
    traces = [r.approval_trace for r in caplog.records if hasattr(r, "approval_trace")]
    assert len(traces) == 1
    trace = traces[0]
    assert trace["outcome"] == "refused"
    assert trace["refusal"]["code"] == "self_approval"
    assert trace["engine_input"]["verdict"] == "approve" and trace["engine_input"]["step"] == 0
    assert trace["lock_wait_ms"] >= 0 and trace["duration_ms"] >= trace["lock_wait_ms"]
    assert caplog.records[-1].levelno == logging.DEBUG


def test_cache_backend_and_config(database, redis_url):
    assert cache_config(
        {"FAB_APPROVAL_CACHE_CONFIG": {"CACHE_TYPE": "redis", "CACHE_REDIS_URL": redis_url}}
    ) == {
        "CACHE_TYPE": "RedisCache",
        "CACHE_REDIS_URL": redis_url,
    }
    assert cache_config(
        {"FAB_APPROVAL_CACHE_BACKEND": "redis", "SIGNOFF_REDIS_URL": redis_url}
    ) == {
        "CACHE_TYPE": "RedisCache",
        "CACHE_REDIS_URL": redis_url,
    }
    addon_refuses(database, "needs a Redis", FAB_APPROVAL_CACHE_BACKEND="redis")
    addon_refuses(database, "'memcached' is not supported", FAB_APPROVAL_CACHE_BACKEND="memcached")
    with pytest.raises(SettingsError, match="names none"):
        check_settings({"FAB_APPROVAL_CACHE_CONFIG": {"CACHE_TYPE": "redis"}}, addon=True)


def test_unknown_key_is_refused_with_a_suggestion(database):
    addon_refuses(
        database,
        "FAB_APPROVAL_LOCK_TIMEOUTS is not a setting.*FAB_APPROVAL_LOCK_TIMEOUT",
        FAB_APPROVAL_LOCK_TIMEOUTS=5,
    )


def test_tenant_slug_must_be_a_slug(database):
    addon_refuses(
        database, "FAB_APPROVAL_TENANT_SLUG 'My_Host'", FAB_APPROVAL_TENANT_SLUG="My_Host"
    )


def test_user_references_keep_the_owner_from_approving(spec, database):  # noqa: F811
    """A report owned by one manager, submitted by an employee: that manager can never
    decide on it (and is not even eligible); another manager can."""
    from signoff.approval.security_validator import ApprovalSecurityValidator
    from signoff.approval.workflow_manager import ApprovalWorkflowManager

    app, db = spec["app"], spec["db"]
    with database.connect("owner") as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS owned_expense (id serial PRIMARY KEY, "
            "amount numeric(10, 2) NOT NULL, owner_id integer, status varchar(50))"
        )
        conn.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON owned_expense TO signoff_app")
        conn.execute("GRANT USAGE ON SEQUENCE owned_expense_id_seq TO signoff_app")
        conn.commit()

    class OwnedExpense(db.Model):  # type: ignore[name-defined]
        __tablename__ = "owned_expense"
        id = Column(Integer, primary_key=True)
        amount = Column(Numeric(10, 2), nullable=False)
        owner_id = Column(Integer)
        status = Column(String(50))
        _approval_workflow = "expense_approval"

    with app.app_context():
        sm = app.appbuilder.sm
        other = sm.find_user(username="spec-mgr2") or sm.add_user(
            "spec-mgr2",
            "mgr2",
            "Spec",
            "mgr2@spec-snippets.test",
            [sm.find_role("Manager")],
            "snippet-password-123",
        )
        spec["users"]["mgr2"] = other.id
    owner = spec["users"]["mgr"]
    with As(spec, "emp"):
        report = OwnedExpense(amount=Decimal("700.00"), owner_id=owner)
        db.session.add(report)
        manager = ApprovalWorkflowManager(app.appbuilder)
        manager.start_approval_workflow(report)
    with As(spec, "mgr") as mgr:
        assert (
            ApprovalSecurityValidator(app.appbuilder).validate_self_approval(report, mgr) is False
        )
        with pytest.raises(Refused) as info:
            manager.approve_instance(report, 0)
        assert info.value.code == "self_approval"
    with As(spec, "mgr2"):
        assert manager.approve_instance(report, 0) is True
    before = app.config["FAB_APPROVAL_USER_REFERENCES"]
    app.config["FAB_APPROVAL_USER_REFERENCES"] = ["submitted_by"]
    try:
        with As(spec, "emp"):
            second = OwnedExpense(amount=Decimal("700.00"), owner_id=owner)
            db.session.add(second)
            manager.start_approval_workflow(second)
        with As(spec, "mgr"):
            assert manager.approve_instance(second, 0) is True  # owner_id no longer counts
    finally:
        app.config["FAB_APPROVAL_USER_REFERENCES"] = before


def test_email_notifications_are_delivered_in_the_host_app_or_switched_off(
    spec,  # noqa: F811
    tmp_path,
):
    """A host app has no Signoff worker: the add-on delivers after commit, in-process."""
    import email

    from signoff.devservers import start_embedded_smtp

    app, db = spec["app"], spec["db"]
    smtp = start_embedded_smtp(tmp_path / "mail")

    def mails_to(address: str) -> int:
        found = [email.message_from_bytes(p.read_bytes()) for p in smtp.mailbox.glob("*.eml")]
        return sum(1 for m in found if address in str(m["To"]))

    def submit(description: str) -> None:
        with As(spec, "emp"):
            report = spec["ExpenseReport"](amount=Decimal("720.00"), description=description)
            db.session.add(report)
            report.submit_for_approval()

    app.config["SIGNOFF_SMTP_URL"] = smtp.url
    try:
        app.config["FAB_APPROVAL_EMAIL_NOTIFICATIONS"] = False
        submit("Switched off")
        assert mails_to(spec["emails"]["mgr"]) == 0
        app.config["FAB_APPROVAL_EMAIL_NOTIFICATIONS"] = True
        submit("Mailed")
        assert mails_to(spec["emails"]["mgr"]) == 1
        body = next(smtp.mailbox.glob("*.eml")).read_text()
        assert "/approvals/pending/" in body and "/t/" not in body and "/act/" not in body
    finally:
        app.config.pop("SIGNOFF_SMTP_URL", None)
        app.config["FAB_APPROVAL_EMAIL_NOTIFICATIONS"] = True
        smtp.stop()


def test_slack_notifications_reach_the_host_apps_channel_or_are_switched_off(
    spec,  # noqa: F811
):
    """In a host app, Slack notices go to the channel's incoming webhook (a real HTTP
    server on 127.0.0.1 answering as Slack does), after commit, in-process: no buttons
    (a host app has no interactivity endpoint), links to "Pending Approvals"."""
    from tests.integration.notifications.slack_helpers import FakeSlack

    app, db = spec["app"], spec["db"]
    fake = FakeSlack().start()
    hook = f"{fake.url}/hook/T000/B000/secret"

    def submit(description: str) -> None:
        with As(spec, "emp"):
            report = spec["ExpenseReport"](amount=Decimal("730.00"), description=description)
            db.session.add(report)
            report.submit_for_approval()

    app.config["SIGNOFF_OUTBOUND_ALLOW"] = "127.0.0.1/32"
    app.config["FAB_APPROVAL_SLACK_WEBHOOK_URL"] = hook
    try:
        app.config["FAB_APPROVAL_SLACK_NOTIFICATIONS"] = False
        submit("Slack switched off")
        assert fake.posts("/hook/") == []
        app.config["FAB_APPROVAL_SLACK_NOTIFICATIONS"] = True
        submit("Slack switched on")
        # One notice per Manager (the step's approvers; earlier tests' managers count).
        posts = fake.posts("/hook/T000/B000/secret")
        assert posts, fake.calls
        # Each notice names its approver ("For <name>"): our manager is among them.
        names = [p.body["blocks"][0]["text"]["text"].rsplit("\nFor ", 1)[1] for p in posts]
        assert "mgr Spec" in names and "emp Spec" not in names
        for message in (p.body for p in posts):
            assert "/approvals/pending/" in message["text"] and "/t/" not in message["text"]
            elements = [
                e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]
            ]
            # One "open" link, to Pending Approvals; no decide buttons.
            assert [e["url"].endswith("/approvals/pending/") for e in elements] == [True]
            assert not any("value" in e for e in elements)
            assert "730" in json.dumps(message)  # the request's fields are in the notice
    finally:
        app.config["FAB_APPROVAL_SLACK_NOTIFICATIONS"] = False
        app.config.pop("FAB_APPROVAL_SLACK_WEBHOOK_URL", None)
        app.config.pop("SIGNOFF_OUTBOUND_ALLOW", None)
        fake.stop()


def test_slack_in_a_host_app_needs_its_webhook(database, redis_url, redis_prefix):
    addon_refuses(
        database,
        "needs FAB_APPROVAL_SLACK_WEBHOOK_URL",
        FAB_APPROVAL_SLACK_NOTIFICATIONS=True,
    )
    addon_refuses(
        database,
        "incoming-webhook URL",
        FAB_APPROVAL_SLACK_NOTIFICATIONS=True,
        FAB_APPROVAL_SLACK_WEBHOOK_URL="hooks.slack.com/services/x",
    )
    saas_refuses(
        database,
        redis_url,
        redis_prefix,
        "only applies to the add-on",
        FAB_APPROVAL_SLACK_WEBHOOK_URL="https://hooks.slack.com/services/x",
    )


def test_workflows_set_after_registration_are_checked_before_serving(database):
    """The Quick Start's order: register the add-on (step 1), then set the workflows
    (step 2). A bad key set late stops the first request, with the reason."""
    url = database.app_url.render_as_string(hide_password=False)
    app = host_app(url, {"WTF_CSRF_ENABLED": False})
    app.config["FAB_APPROVAL_WORKFLOWS"] = {"Expense-Approval": {"name": "E", "steps": []}}
    app.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(AddonLoadError, match="lowercase letters, digits and '_'"):
        app.test_client().get("/login/")


def test_a_status_column_too_short_never_fails_the_decision(spec, database, caplog):  # noqa: F811
    from signoff.approval.workflow_manager import ApprovalWorkflowManager

    app, db = spec["app"], spec["db"]
    with database.connect("owner") as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS short_expense (id serial PRIMARY KEY, "
            "amount numeric(10, 2) NOT NULL, status varchar(10))"
        )
        conn.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON short_expense TO signoff_app")
        conn.execute("GRANT USAGE ON SEQUENCE short_expense_id_seq TO signoff_app")
        conn.commit()

    class ShortExpense(db.Model):  # type: ignore[name-defined]
        __tablename__ = "short_expense"
        id = Column(Integer, primary_key=True)
        amount = Column(Numeric(10, 2), nullable=False)
        status = Column(String(10), default="draft")
        _approval_workflow = "expense_approval"

    with As(spec, "emp"), caplog.at_level(logging.WARNING, logger="signoff.workflow.manager"):
        report = ShortExpense(amount=Decimal("700.00"), status="draft")
        db.session.add(report)
        assert ApprovalWorkflowManager(app.appbuilder).start_approval_workflow(report) is True
        assert report.status == "draft"  # 'pending_manager_approval' does not fit
    assert "cannot hold 'pending_manager_approval'" in caplog.text


def test_the_lock_block_holds_the_request_until_it_ends(spec, database):  # noqa: F811
    from signoff.approval.workflow_manager import ApprovalWorkflowManager

    app, db = spec["app"], spec["db"]
    with As(spec, "emp"):
        report = spec["ExpenseReport"](amount=Decimal("410.00"), description="Held")
        db.session.add(report)
        report.submit_for_approval()
        manager = ApprovalWorkflowManager(app.appbuilder)
        req = manager.request_for(report)

    def other_can_lock() -> bool:
        with psycopg.connect(database.dsn("app")) as other:
            other.execute("SELECT set_config('app.tenant_id', %s, true)", (str(req.tenant_id),))
            try:
                other.execute("SELECT * FROM signoff.request_lock(%s, 200)", (req.id,))
            except psycopg.errors.LockNotAvailable:
                return False
            return True

    with As(spec, "mgr"):
        with manager.database_lock_for_approval(report) as locked:
            assert other_can_lock() is False  # held for the whole block...
            manager.approve_instance(locked, 0)  # ...and a decision inside it joins it
            assert other_can_lock() is False
        assert other_can_lock() is True  # released at its end, with the decision committed
    with As(spec, "mgr"):
        # Under the Finance step's auto_approve_threshold (1000): approved at step 0.
        assert manager.request_for(report).status == "approved"
        history = manager.get_approval_history(report)
    assert [(h["step"], h["verdict"]) for h in history] == [(0, "approve")]


def test_mfa_timeout_decides_how_fresh_a_verification_must_be(spec):  # noqa: F811
    from datetime import UTC, datetime, timedelta

    from signoff.approval.security_validator import ApprovalSecurityValidator
    from signoff.security import mfa_state

    app = spec["app"]
    with As(spec, "emp"):
        report = spec["ExpenseReport"](amount=Decimal("1600.00"), description="Fresh")
        spec["db"].session.add(report)
        report.submit_for_approval()
    from signoff.approval.workflow_manager import ApprovalWorkflowManager

    with As(spec, "mgr"):
        ApprovalWorkflowManager(app.appbuilder).approve_instance(report, 0)
    with As(spec, "fin") as fin:
        from signoff.security import mfa

        if not mfa.is_enrolled(spec["db"].session, fin.id):  # this test alone
            import time

            from signoff.security.totp import code_at

            enrolment = mfa.begin_enrolment(spec["db"].session, fin)
            mfa.confirm_enrolment(
                spec["db"].session, fin.id, code_at(enrolment.secret, time.time())
            )
        mfa_state.record_verification(fin.id, datetime.now(UTC) - timedelta(seconds=120))
        validator = ApprovalSecurityValidator(app.appbuilder)
        app.config["FAB_APPROVAL_MFA_TIMEOUT"] = 60
        try:
            assert validator.validate_mfa_requirement(fin, report) is False
            app.config["FAB_APPROVAL_MFA_TIMEOUT"] = 1800
            assert validator.validate_mfa_requirement(fin, report) is True
        finally:
            app.config["FAB_APPROVAL_MFA_TIMEOUT"] = 1800
