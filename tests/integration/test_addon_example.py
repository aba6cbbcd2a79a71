"""The specification's Quick Start (examples/expense_app) on real PostgreSQL."""

from __future__ import annotations

import re
import time
from decimal import Decimal

import pytest
from flask import g

from signoff.addon import AddonLoadError, addon
from signoff.workflow.actions import Refused
from tests.fixtures.expense_example import PASSWORD, load_example


@pytest.fixture(scope="module")
def example(database, redis_url):
    return load_example(database)


class As:
    def __init__(self, module, who):
        self.app, self.user_id = module.app, module.users[who]

    def __enter__(self):
        self.ctx = self.app.test_request_context("/")
        self.ctx.push()
        g.user = self.app.appbuilder.sm.get_user_by_id(self.user_id)
        return g.user

    def __exit__(self, *exc):
        self.ctx.pop()


def status_of(example, report_id):
    with example.app.app_context():
        return example.db.session.get(example.ExpenseReport, report_id).status


def test_quick_start_expense_report_goes_through_both_steps_with_mfa(example):
    """The specification's expense, as written, to approved through the manager API;
    the Finance step after enrolling and verifying an authenticator."""
    from signoff.approval.workflow_manager import ApprovalWorkflowManager
    from signoff.security import mfa
    from signoff.security.totp import code_at

    with As(example, "emp"):
        report = example.ExpenseReport(amount=Decimal("2500.00"), description="Conference")
        example.db.session.add(report)
        assert report.submit_for_approval() is True
        report_id = report.id
        manager = ApprovalWorkflowManager(example.app.appbuilder)
        assert manager.status_of(report) == "pending"
        with pytest.raises(Refused) as info:
            manager.approve_instance(report, 0)  # the requester cannot approve
        assert info.value.code == "self_approval"
    assert status_of(example, report_id) == "pending_manager_approval"

    with As(example, "mgr"):
        assert manager.approve_instance(report, 0, comments="fine") is True
    assert status_of(example, report_id) == "pending_finance_approval"

    with As(example, "fin") as fin:
        with pytest.raises(Refused) as info:
            manager.approve_instance(report, 1)
        assert info.value.code == "mfa_required"  # the spec's requires_mfa: True
        session = example.app.appbuilder.session
        enrolment = mfa.begin_enrolment(session, fin)
        mfa.confirm_enrolment(session, fin.id, code_at(enrolment.secret, time.time()))
        assert manager.approve_instance(report, 1, comments="paid") is True
        history = manager.get_approval_history(report)
        assert [(h["step"], h["verdict"], h["mfa_verified"]) for h in history] == [
            (0, "approve", False),
            (1, "approve", True),
        ]
        metrics = manager.get_metrics()
        assert metrics["total_approvals"] >= 1
        assert manager.health_check()["postgresql"]["status"] == "ok"
    assert status_of(example, report_id) == "approved"


def test_small_amount_needs_no_workflow_and_pending_view_lists_items(example):
    with As(example, "emp"):
        report = example.ExpenseReport(amount=Decimal("20.00"), description="Coffee")
        example.db.session.add(report)
        assert report.submit_for_approval() is True
        assert report.status == "approved"
        big = example.ExpenseReport(amount=Decimal("700.00"), description="Flight")
        example.db.session.add(big)
        big.submit_for_approval()
    client = example.app.test_client()
    form = client.get("/login/").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form)
    assert token, "the host's login form carries its CSRF token"
    resp = client.post(
        "/login/",
        data={"username": "ex-mgr", "password": PASSWORD, "csrf_token": token.group(1)},
    )
    assert resp.status_code == 302
    page = client.get("/approvals/pending/")
    assert page.status_code == 200
    assert "ExpenseReport" in page.get_data(as_text=True)
    names = [e.name for i in example.app.appbuilder.menu.menu for e in [i, *(i.childs or [])]]
    assert names.count("Pending Approvals") == 1


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


def _host_app(database, addon_managers, name: str = "host", **config):
    from flask import Flask
    from flask_appbuilder import AppBuilder
    from flask_appbuilder.models.sqla.base import SQLA

    app = Flask(name)
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
        **config,
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


def _login(client, username):
    form = client.get("/login/").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form)
    assert token, "the host's login form carries its CSRF token"
    resp = client.post(
        "/login/", data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)}
    )
    assert resp.status_code == 302


def test_addon_pages_are_in_german_in_the_host_app(example):
    """Signoff's catalogue is registered in the host app: the add-on's page follows the
    browser's Accept-Language (the host keeps FAB's session-based selector, which never
    reads it); the host's own pages keep that selector."""
    from flask_babel import get_locale

    client = example.app.test_client()
    _login(client, "ex-mgr")
    german = client.get("/approvals/pending/", headers={"Accept-Language": "de-DE,de;q=0.9"})
    assert german.status_code == 200
    html = german.get_data(as_text=True)
    assert "Offene Genehmigungen" in html and "Pending approvals" not in html
    assert 'placeholder="Kommentar"' in html
    english = client.get("/approvals/pending/", headers={"Accept-Language": "en"})
    assert "Pending approvals" in english.get_data(as_text=True)
    # A host page: FAB's selector, unchanged (the session's language, the host's default).
    with example.app.test_request_context("/login/", headers={"Accept-Language": "de"}):
        assert str(get_locale()) == "en"
    with example.app.test_request_context("/approvals/pending/", headers={"Accept-Language": "de"}):
        assert str(get_locale()) == "de"
    # A language the person chose in FAB's menu (not the host's default) wins.
    with example.app.test_request_context("/approvals/pending/", headers={"Accept-Language": "en"}):
        from flask import session

        session["locale"] = "de"
        assert str(get_locale()) == "de"


def test_the_hosts_own_translations_win_over_signoffs(example, database, tmp_path):
    """The host's catalogue (its BABEL_TRANSLATION_DIRECTORIES) comes after Signoff's: a
    message both translate reads as the host has it; FAB's own messages stay FAB's."""
    from babel.messages.catalog import Catalog
    from babel.messages.mofile import write_mo
    from flask_babel import gettext

    from signoff.languages import TRANSLATIONS

    catalog = Catalog(locale="de")
    catalog.add("Pending approvals", "Zu genehmigen (Host)")
    target = tmp_path / "de" / "LC_MESSAGES"
    target.mkdir(parents=True)
    with (target / "messages.mo").open("wb") as f:
        write_mo(f, catalog)

    app = _host_app(
        database,
        ["signoff.addon.ApprovalWorkflowAddonManager"],
        "host-with-translations",
        BABEL_TRANSLATION_DIRECTORIES=str(tmp_path),
    )
    directories = app.extensions["babel"].translation_directories
    assert directories.index(str(TRANSLATIONS)) < directories.index(str(tmp_path))
    with app.test_request_context("/approvals/pending/", headers={"Accept-Language": "de"}):
        assert gettext("Pending approvals") == "Zu genehmigen (Host)"  # the host's
        assert gettext("Nothing waits for you.") == "Nichts wartet auf Sie."  # Signoff's
        assert gettext("List Users") == "Benutzer auflisten"  # FAB's own
