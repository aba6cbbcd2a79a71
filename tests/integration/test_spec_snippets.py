"""Every Python snippet of the specification's README, run against the add-on.

The specification (``tests/fixtures/approval_workflow_spec.md``, a verbatim copy) is
parsed and each ```python block is accounted for: run with only the import prefix
changed (``flask_appbuilder.process.approval`` -> ``signoff.approval``), run with the
lines Flask-AppBuilder 5.3 itself forces to differ (:data:`FAB5_LINES`, the same list
as ``examples/expense_app/README.md``), or named in :data:`NOT_RUN` with the reason.
A block added to the specification fails :func:`test_every_python_block_is_accounted_for`.

Names a snippet uses without importing them (``Column``, ``current_app``, the
``validator`` and ``instance`` of the security section) are given to it, never
changed in it.
"""

from __future__ import annotations

import ast
import inspect
import logging
import re
import time
import uuid
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import g

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "tests/fixtures/approval_workflow_spec.md"
PREFIX = ("flask_appbuilder.process.approval", "signoff.approval")
PASSWORD = "snippet-password-123"
SLUG = "spec-snippets"

#: Lines of the Quick Start's step 1 that Flask-AppBuilder 5.3 (or PostgreSQL) forces
#: to differ, as (specification, here). Each must occur in the block.
FAB5_LINES = [
    # FAB 5 has no SQLA in its top-level package.
    (
        "from flask_appbuilder import AppBuilder, SQLA",
        "from flask_appbuilder import AppBuilder\n"
        "from flask_appbuilder.models.sqla.base import SQLA",
    ),
    # PostgreSQL: row-level security and advisory locks have no SQLite equivalent.
    (
        "app.config['SQLALCHEMY_DATABASE_URI'] = 'sqlite:///app.db'",
        "app.config['SQLALCHEMY_DATABASE_URI'] = DATABASE_URL",
    ),
    # FAB 5 builds AppBuilder (and its add-ons, and add_view) inside an app context.
    (
        "appbuilder = AppBuilder(app, db.session)",
        "with app.app_context():\n    appbuilder = AppBuilder(app, db.session)",
    ),
    # FAB 5 has no add_addon_manager: the add-on's one-line registration.
    (
        "appbuilder.add_addon_manager(ApprovalWorkflowAddonManager(appbuilder))",
        "ApprovalWorkflowAddonManager.register(appbuilder, app)",
    ),
]

#: Blocks not run, by their heading, with the reason.
NOT_RUN = {
    "#### 1. Import Errors": "relative imports of the specification's own package layout "
    "(a 'problem' example; Signoff has no TenantContext module)",
    "### Required Models": "the specification's own implementation of its tables; Signoff "
    "maps them to its schema (README: 'The specification's models and tables')",
    "### Integration Steps": "steps for installing the specification's models file into "
    "Flask-AppBuilder's source tree (relative imports, ProcessTemplate views)",
}


def python_blocks() -> list[tuple[str, str]]:
    """(heading, code) of every ```python block, in order, prefix changed."""
    text = SPEC.read_text()
    out, heading = [], ""
    pattern = r"^(#+ [^\n]*)$|^[ \t]*```(\w*)\n(.*?)^[ \t]*```"
    for m in re.finditer(pattern, text, re.M | re.S):
        if m.group(1):
            heading = m.group(1).strip()
            continue
        if m.group(2) == "python":
            code = inspect.cleandoc("\n" + m.group(3)) if m.group(3).startswith(" ") else m.group(3)
            out.append((heading, code.replace(*PREFIX)))
    return out


def block(heading: str) -> str:
    found = [code for h, code in python_blocks() if h == heading]
    assert len(found) == 1, heading
    return found[0]


def run(code: str, ns: dict[str, Any]) -> Any:
    """Run ``code`` in ``ns``; the value of its last statement if that is an expression."""
    tree = ast.parse(code)
    last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    if last is not None:
        tree.body.pop()
    exec(compile(tree, "<spec>", "exec"), ns)  # noqa: S102 - the specification's code
    if last is not None:
        return eval(compile(ast.Expression(last.value), "<spec>", "eval"), ns)  # noqa: S307
    return None


def config_of(code: str) -> dict[str, Any]:
    """A configuration block's keys (module-level assignments)."""
    ns: dict[str, Any] = {}
    exec(code, ns)  # noqa: S102 - the specification's configuration
    return {k: v for k, v in ns.items() if k.isupper()}


HANDLED = {
    "### 1. Basic Setup",
    "### 2. Define Approval Workflow",
    "### 3. Use in Your Models",
    "### 4. Create Approval Views",
    "### Basic Configuration",
    "### Advanced Rule Configuration",
    "### Multi-Tenant Configuration",
    "### 1. Self-Approval Prevention",
    "### 2. Role-Based Security",
    "### 3. Input Sanitization",
    "### 4. MFA Requirements",
    "### 5. Rate Limiting",
    "### Built-in Metrics",
    "### Audit Reporting",
    "### Health Checks",
    "#### 2. Database Lock Timeouts",
    "#### 3. MFA Session Timeouts",
    "#### 4. Rate Limit Issues",
    "### Debug Mode",
    "#### Caching Configuration",
    "### ApprovalWorkflowManager",
}


def test_every_python_block_is_accounted_for():
    headings = [h for h, _ in python_blocks()]
    assert len(headings) == 25
    for h in headings:
        assert h in HANDLED or h in NOT_RUN, f"specification block under {h!r} is not run"
    assert set(HANDLED) <= set(headings)


# --- the Quick Start, as written ------------------------------------------------------


def quick_start_code() -> str:
    code = block("### 1. Basic Setup")
    for old, new in FAB5_LINES:
        assert old in code, old
        code = code.replace(old, new)
    return code


def prelude(database_url: str) -> dict[str, Any]:
    """What the Quick Start's blocks use without importing it."""
    from flask import current_app
    from sqlalchemy import Boolean, Column, Integer, Numeric, String

    return {
        "__name__": "spec_quick_start",
        "DATABASE_URL": database_url,
        "Column": Column,
        "Integer": Integer,
        "Numeric": Numeric,
        "String": String,
        "Boolean": Boolean,
        "current_app": current_app,
    }


@pytest.fixture(scope="module")
def spec(database, redis_url):
    with database.connect("owner") as conn:
        conn.execute((ROOT / "examples/expense_app/schema.sql").read_text())
        conn.commit()
    ns = prelude(database.app_url.render_as_string(hide_password=False))
    code = quick_start_code().replace(
        "app.config['SECRET_KEY'] = 'your-secret-key'",
        "app.config['SECRET_KEY'] = 'your-secret-key'\n"
        f"app.config['FAB_APPROVAL_TENANT_SLUG'] = {SLUG!r}\n"
        "app.config['WTF_CSRF_ENABLED'] = False",
    )
    run(code, ns)  # 1. Basic Setup
    run(block("### 2. Define Approval Workflow"), ns)
    run(block("### 3. Use in Your Models"), ns)
    app = ns["app"]
    with app.app_context():  # FAB 5: add_view inside an app context
        run(block("### 4. Create Approval Views"), ns)
        sm = app.appbuilder.sm
        users = {}
        usernames = {}
        emails = {}
        for name, roles in {"emp": [], "mgr": ["Manager"], "fin": ["Finance_Manager"]}.items():
            role_objs = [sm.find_role(r) or sm.add_role(r) for r in roles] or [
                sm.find_role("Public")
            ]
            # People of their own on every run: one test enrols an authenticator.
            tag = uuid.uuid4().hex[:8]
            user = sm.add_user(
                f"spec-{name}-{tag}",
                name,
                "Spec",
                f"{name}-{tag}@spec-snippets.test",
                role_objs,
                PASSWORD,
            )
            users[name] = user.id
            usernames[name] = user.username
            emails[name] = user.email
    ns["users"] = users
    ns["usernames"] = usernames
    ns["emails"] = emails
    return ns


def stored_status(spec: dict[str, Any], report: Any) -> str:
    """The row's status as committed (each ``As`` block has its own session)."""
    from sqlalchemy import inspect as sa_inspect

    with spec["app"].app_context():
        row = spec["db"].session.get(type(report), sa_inspect(report).identity[0])
        spec["db"].session.refresh(row)
        return str(row.status)


class As:
    """A request context acting as one of the users."""

    def __init__(self, ns: dict[str, Any], who: str) -> None:
        self.app, self.ns, self.who = ns["app"], ns, who

    def __enter__(self) -> Any:
        self.ctx = self.app.test_request_context("/")
        self.ctx.push()
        g.user = self.app.appbuilder.sm.get_user_by_id(self.ns["users"][self.who])
        return g.user

    def __exit__(self, *exc: Any) -> None:
        self.ctx.pop()


def test_step_4_puts_pending_approvals_in_the_menu_once(spec):
    app = spec["app"]
    client = app.test_client()
    client.get("/login/")  # the first request: the add-on adds the item only if missing
    names = [
        entry.name for item in app.appbuilder.menu.menu for entry in [item, *(item.childs or [])]
    ]
    assert names.count("Pending Approvals") == 1


def test_the_expense_goes_through_both_steps_with_mfa(spec, caplog):
    from signoff.approval.audit_logger import ApprovalAuditLogger
    from signoff.approval.security_validator import ApprovalSecurityValidator, SecurityError
    from signoff.approval.workflow_manager import ApprovalWorkflowManager
    from signoff.errors import Refused
    from signoff.security import mfa
    from signoff.security.totp import code_at
    from signoff.workflow.signals import request_approved

    app, db, ExpenseReport = spec["app"], spec["db"], spec["ExpenseReport"]
    approved: list[Any] = []
    request_approved.connect(lambda sender, **kw: approved.append(kw), app, weak=False)

    with As(spec, "emp") as emp:
        report = ExpenseReport(amount=Decimal("2500.00"), description="Conference")
        db.session.add(report)  # not committed: submit_for_approval saves it with its request
        assert report.submit_for_approval() is True
        assert report.status == "pending_manager_approval"  # the workflow's initial_state
        workflow_manager = ApprovalWorkflowManager(app.appbuilder)
        validator = ApprovalSecurityValidator(app.appbuilder)
        ns = {**spec, "validator": validator, "instance": report, "user": emp}
        # 1. Self-Approval Prevention: the submitter may not approve.
        assert run(block("### 1. Self-Approval Prevention"), ns) is False
        # 3. Input Sanitization
        ns["user_input"] = "<script>alert(1)</script><b>Fine</b>"
        run(block("### 3. Input Sanitization"), ns)
        assert ns["clean_comment"] == "Fine"

    with As(spec, "mgr") as mgr:
        ns.update(user=mgr, workflow_manager=workflow_manager)
        assert run(block("### 1. Self-Approval Prevention"), ns) is True
        # 2. Role-Based Security
        assert run(block("### 2. Role-Based Security"), ns) is True
        # 5. Rate Limiting: within the budget, nothing is raised.
        ns["SecurityError"] = SecurityError
        run(block("### 5. Rate Limiting"), ns)

        # Database Lock Timeouts: approve under the request's lock.
        def process_approval_quickly(locked: Any) -> bool:
            return workflow_manager.approve_instance(locked, 0, comments="Looks right")

        ns["process_approval_quickly"] = process_approval_quickly
        run(block("#### 2. Database Lock Timeouts"), ns)
        assert ns["result"] is True and ns["locked_instance"] is report
        assert stored_status(spec, report) == "pending_finance_approval"

    with As(spec, "fin") as fin:
        ns["user"] = fin
        # 3. MFA Session Timeouts: no verification yet -> sent to the add-on's MFA page.
        body = "\n".join(
            "    " + line for line in block("#### 3. MFA Session Timeouts").split("\n")
        )
        from flask import redirect, url_for

        ns.update(redirect=redirect, url_for=url_for, step_config={"requires_mfa": True})
        run("def check():\n" + body + "\n    return None", ns)
        answer = ns["check"]()
        assert answer is not None and answer.location.startswith("/approvals/mfa/verify/")
        with pytest.raises(Refused) as refused:
            workflow_manager.approve_instance(report, 1)
        assert refused.value.code == "mfa_required"
        # Enrol and verify (what the add-on's pages do), then approve.
        enrolment = mfa.begin_enrolment(db.session, fin)
        mfa.confirm_enrolment(db.session, fin.id, code_at(enrolment.secret, time.time()))
        assert run("validator.validate_mfa_requirement(user, instance)", ns) is True
        assert answer is not None and ns["check"]() is None
        with caplog.at_level(logging.DEBUG, logger="signoff.approval"):
            app.config["FAB_APPROVAL_DEBUG_TRACE"] = True
            try:
                assert workflow_manager.approve_instance(report, 1, comments="OK") is True
            finally:
                app.config["FAB_APPROVAL_DEBUG_TRACE"] = False
        assert stored_status(spec, report) == "approved"
        assert approved and approved[-1]["status"] == "approved"
        history = workflow_manager.get_approval_history(report)
        assert [(h["step"], h["verdict"], h["mfa_verified"]) for h in history] == [
            (0, "approve", False),
            (1, "approve", True),
        ]
        trace = [r.approval_trace for r in caplog.records if hasattr(r, "approval_trace")]
        assert trace and trace[-1]["outcome"] == "committed"
        assert trace[-1]["engine_input"]["mfa_fresh"] is True and "lock_wait_ms" in trace[-1]

        # Built-in Metrics, Health Checks, Audit Reporting
        metrics = run(block("### Built-in Metrics"), ns)
        assert {"total_approvals", "avg_approval_time", "approval_success_rate"} <= set(metrics)
        assert metrics["total_approvals"] >= 1
        run(block("### Health Checks"), ns)
        health = ns["health_status"]
        assert health["postgresql"]["status"] == "ok" and health["pending"] >= 0
        # No Redis in this host app: said so, not "ok".
        assert health["redis"]["status"] == "not configured" and health["status"] == "ok"
        perf = health["performance"]
        assert perf["actions"] >= 2 and perf["lock_waits"] >= 2
        assert perf["avg_action_ms"] > 0 and perf["max_lock_wait_ms"] >= 0
        ns["audit_logger"] = ApprovalAuditLogger(app.appbuilder)
        ns["datetime"] = datetime
        pdf = run(block("### Audit Reporting"), ns)
        assert pdf.startswith(b"%PDF")


def test_small_expense_is_approved_without_a_workflow(spec):
    with As(spec, "emp"):
        report = spec["ExpenseReport"](amount=Decimal("20.00"), description="Coffee")
        spec["db"].session.add(report)
        assert report.submit_for_approval() is True
        assert report.status == "approved"


def test_database_lock_timeout_is_a_clear_error(spec, database):
    from signoff.approval.workflow_manager import ApprovalLockTimeout, ApprovalWorkflowManager

    app, db = spec["app"], spec["db"]
    with As(spec, "emp"):
        report = spec["ExpenseReport"](amount=Decimal("300.00"), description="Train")
        db.session.add(report)
        report.submit_for_approval()
        manager = ApprovalWorkflowManager(app.appbuilder)
        req = manager.request_for(report)
        tenant = req.tenant_id
    holder = psycopg.connect(database.dsn("app"))
    try:
        holder.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant),))
        holder.execute("SELECT * FROM signoff.request_lock(%s, 1000)", (req.id,))
        with (
            As(spec, "mgr"),
            pytest.raises(ApprovalLockTimeout) as info,
            manager.database_lock_for_approval(report, timeout=0.2),
        ):
            pytest.fail("the block ran without the lock")
        assert info.value.code == "lock_timeout"
        assert "FAB_APPROVAL_LOCK_TIMEOUT" in info.value.message
    finally:
        holder.rollback()
        holder.close()
    with As(spec, "mgr"), manager.database_lock_for_approval(report) as locked:
        assert locked is report  # free again


def test_rate_limit_snippet_raises_once_the_budget_is_spent(spec):
    from signoff.approval.security_validator import ApprovalSecurityValidator, SecurityError
    from signoff.limiter import SCOPE_DECISIONS, Rule, enforce

    app = spec["app"]
    app.config.update(FAB_APPROVAL_MAX_APPROVALS_PER_WINDOW=2, FAB_APPROVAL_RATE_LIMIT_WINDOW=60)
    try:
        with As(spec, "fin") as fin:
            validator = ApprovalSecurityValidator(app.appbuilder)
            ns = {"validator": validator, "user": fin, "SecurityError": SecurityError}
            tenant = app.extensions["signoff_addon"].tenant_id
            rule = Rule(SCOPE_DECISIONS, "2 per 60 second", f"tenant:{tenant}:user:{fin.id}")
            enforce([rule], always_open=True)
            enforce([rule], always_open=True)
            with pytest.raises(SecurityError, match="rate limit"):
                run(block("### 5. Rate Limiting"), ns)
            # 4. Rate Limit Issues: an exempt role is never limited.
            app.config.update(config_of(block("#### 4. Rate Limit Issues")))
            app.config["FAB_APPROVAL_RATE_LIMIT_EXEMPTIONS"] = ["Finance_Manager"]
            run(block("### 5. Rate Limiting"), ns)
    finally:
        app.config.update(
            FAB_APPROVAL_MAX_APPROVALS_PER_WINDOW=20,
            FAB_APPROVAL_RATE_LIMIT_WINDOW=300,
            FAB_APPROVAL_RATE_LIMIT_EXEMPTIONS=[],
        )


def test_mfa_requirements_step_is_accepted():
    from signoff.workflow.definitions import parse_definition

    ns: dict[str, Any] = {}
    run(block("### 4. MFA Requirements"), ns)
    defn = parse_definition("executive", {"name": "Executive", "steps": [ns["workflow_step"]]})
    assert defn.steps[0].requires_mfa and defn.steps[0].mfa_timeout == 1800


def test_debug_mode_snippet_enables_the_trace(spec):
    ns: dict[str, Any] = {}
    run(block("### Debug Mode"), ns)
    assert ns["FAB_APPROVAL_DEBUG_TRACE"] is True
    assert logging.getLogger("signoff.approval.trace").isEnabledFor(logging.DEBUG)
    logging.getLogger("signoff.approval").setLevel(logging.NOTSET)


# --- configuration sections ---------------------------------------------------------


def host_app(database_url: str, config: dict[str, Any]) -> Any:
    """The Quick Start's app with ``config`` (a configuration block's keys) applied."""
    ns = prelude(database_url)
    code = quick_start_code().replace(
        "db = SQLA(app)",
        f"app.config['FAB_APPROVAL_TENANT_SLUG'] = {SLUG!r}\napp.config.update(EXTRA)\n"
        "db = SQLA(app)",
    )
    ns["EXTRA"] = config
    run(code, ns)
    return ns["app"]


def test_basic_and_rule_configuration_are_accepted(spec, database):
    url = database.app_url.render_as_string(hide_password=False)
    config = {
        **config_of(block("### Basic Configuration")),
        **config_of(block("### Advanced Rule Configuration")),
    }
    app = host_app(url, config)
    assert app.config["FAB_APPROVAL_LOCK_TIMEOUT"] == 10
    assert app.config["FAB_APPROVAL_RULES"][0]["name"] == "High Value Expense Rule"


def test_multi_tenant_configuration_is_refused_with_the_reason(spec, database):
    from signoff.errors import AddonLoadError

    url = database.app_url.render_as_string(hide_password=False)
    config = config_of(block("### Multi-Tenant Configuration"))
    with pytest.raises(AddonLoadError, match=r"'tenant_1' can never match.*'tenant-1'"):
        host_app(url, config)


def test_caching_configuration_literal_is_accepted(spec, database, redis_url):
    from signoff.extensions import cache

    url = database.app_url.render_as_string(hide_password=False)
    config = config_of(block("#### Caching Configuration"))
    assert config["FAB_APPROVAL_CACHE_CONFIG"]["CACHE_TYPE"] == "redis"
    # The Redis address is this machine's, like the database URL.
    config["FAB_APPROVAL_CACHE_CONFIG"]["CACHE_REDIS_URL"] = redis_url
    app = host_app(url, config)
    with app.app_context():
        backend = app.extensions["cache"][cache]
        assert type(backend).__name__ == "RedisCache"
        cache.set("spec-snippet-probe", 41)
        assert cache.get("spec-snippet-probe") == 41
    from signoff.approval.workflow_manager import ApprovalWorkflowManager

    with app.test_request_context("/"):
        health = ApprovalWorkflowManager(app.appbuilder).health_check()
    assert health["redis"]["status"] == "ok" and health["redis"]["backend"] == "RedisCache"


def test_api_reference_signatures_match():
    from signoff.approval.workflow_manager import ApprovalWorkflowManager

    ns: dict[str, Any] = {"List": list, "Dict": dict}
    run(block("### ApprovalWorkflowManager"), ns)
    for name, method in vars(ns["ApprovalWorkflowManager"]).items():
        if not callable(method):
            continue
        spec_params = list(inspect.signature(method).parameters.values())
        ours = inspect.signature(getattr(ApprovalWorkflowManager, name)).parameters
        for p in spec_params:
            assert p.name in ours, f"{name}({p.name})"
            assert ours[p.name].default == p.default, f"{name}({p.name}) default"


def test_host_status_follows_reject_and_withdraw_on_every_path(spec):
    """Rejected through the pending view (HTTP, the host's FAB login) and withdrawn
    through the manager: the host row moves in the same transaction, signals follow."""
    from sqlalchemy import inspect as sa_inspect

    from signoff.approval.workflow_manager import ApprovalWorkflowManager
    from signoff.workflow.signals import request_rejected, request_withdrawn

    app, db = spec["app"], spec["db"]
    seen: list[tuple[str, str]] = []
    request_rejected.connect(
        lambda s, **kw: seen.append(("rejected", kw["status"])), app, weak=False
    )
    request_withdrawn.connect(
        lambda s, **kw: seen.append(("withdrawn", kw["status"])), app, weak=False
    )
    with As(spec, "emp"):
        to_reject = spec["ExpenseReport"](amount=Decimal("800.00"), description="Laptop")
        to_withdraw = spec["ExpenseReport"](amount=Decimal("900.00"), description="Desk")
        db.session.add_all([to_reject, to_withdraw])
        to_reject.submit_for_approval()
        to_withdraw.submit_for_approval()
        manager = ApprovalWorkflowManager(app.appbuilder)
        request_id = manager.request_for(to_reject).id
        assert manager.withdraw_instance(to_withdraw) is True
    assert stored_status(spec, to_withdraw) == "withdrawn"

    client = app.test_client()
    assert (
        client.post(
            "/login/", data={"username": spec["usernames"]["mgr"], "password": PASSWORD}
        ).status_code
        == 302
    )
    page = client.get("/approvals/pending/")
    assert page.status_code == 200 and "ExpenseReport" in page.get_data(as_text=True)
    answer = client.post(
        f"/approvals/decide/{request_id}/0", data={"verdict": "reject", "comment": "No"}
    )
    assert answer.status_code == 302
    assert stored_status(spec, to_reject) == "rejected"
    assert ("withdrawn", "withdrawn") in seen and ("rejected", "rejected") in seen
    assert sa_inspect(to_reject).identity  # the same row, not a copy


def test_manager_calls_leave_the_workflow_cache_generation_alone(spec, database):
    """Submitting and deciding change no workflow: the tenant's cache generation (the
    key of every cached definition) stays where it is."""

    def generation() -> int:
        with database.connect("admin") as conn:
            row = conn.execute(
                "SELECT config_generation FROM tenant WHERE slug = %s", (SLUG,)
            ).fetchone()
        return int(row[0])

    from signoff.approval.workflow_manager import ApprovalWorkflowManager

    with As(spec, "emp"):
        first = spec["ExpenseReport"](amount=Decimal("640.00"), description="Warm-up")
        spec["db"].session.add(first)
        first.submit_for_approval()  # pins the configured version once
    before = generation()
    with As(spec, "emp"):
        report = spec["ExpenseReport"](amount=Decimal("650.00"), description="Cache")
        spec["db"].session.add(report)
        report.submit_for_approval()
    with As(spec, "mgr"):
        ApprovalWorkflowManager(spec["app"].appbuilder).approve_instance(report, 0)
    assert generation() == before


def test_a_role_created_after_start_opens_the_views_at_once(spec):
    """No restart and no manager call: the first visit grants the add-on's views."""
    app = spec["app"]
    with app.app_context():
        sm = app.appbuilder.sm
        role = sm.add_role("Late_Approver")
        sm.add_user("spec-late", "late", "Spec", "late@spec-snippets.test", [role], PASSWORD)
    client = app.test_client()
    login = client.post("/login/", data={"username": "spec-late", "password": PASSWORD})
    assert login.status_code == 302
    assert client.get("/approvals/pending/").status_code == 200
    assert client.get("/approvals/mfa/enrol/").status_code == 200


def test_the_four_rest_endpoints_in_the_host_app(spec, database):
    """The specification's endpoints, mounted by the add-on, with the host's own FAB
    JWT login; decisions through the actions (self-approval, MFA, the lock)."""
    app = spec["app"]
    client = app.test_client()

    def token(who: str) -> dict[str, str]:
        resp = client.post(
            "/api/v1/security/login",
            json={"username": spec["usernames"][who], "password": PASSWORD, "provider": "db"},
        )
        assert resp.status_code == 200, resp.get_json()
        return {"Authorization": f"Bearer {resp.get_json()['access_token']}"}

    with As(spec, "emp"):
        report = spec["ExpenseReport"](amount=Decimal("1200.00"), description="API")
        spec["db"].session.add(report)
        report.submit_for_approval()
        from signoff.approval.workflow_manager import ApprovalWorkflowManager

        rid = str(ApprovalWorkflowManager(spec["app"].appbuilder).request_for(report).id)
    base = "/api/v1/approval-workflow"
    assert client.get(f"{base}/pending").status_code == 401
    mgr, emp, fin = token("mgr"), token("emp"), token("fin")
    pending = client.get(f"{base}/pending", headers=mgr).get_json()
    assert rid in [item["request_id"] for item in pending["result"]]
    # The submitter holds only Public: the add-on grants Public nothing.
    assert client.post(f"{base}/approve/{rid}/0", headers=emp, json={}).status_code == 403
    with app.app_context():  # a second manager, so a manager's own report can start
        sm = app.appbuilder.sm
        if sm.find_user(username="spec-mgr2") is None:
            sm.add_user(
                "spec-mgr2",
                "mgr2",
                "Spec",
                "mgr2@spec-snippets.test",
                [sm.find_role("Manager")],
                PASSWORD,
            )
    with As(spec, "mgr"):
        own_report = spec["ExpenseReport"](amount=Decimal("1300.00"), description="Mine")
        spec["db"].session.add(own_report)
        own_report.submit_for_approval()
        own_id = str(ApprovalWorkflowManager(spec["app"].appbuilder).request_for(own_report).id)
    own = client.post(f"{base}/approve/{own_id}/0", headers=mgr, json={})
    assert own.status_code == 422 and own.get_json()["code"] == "self_approval"
    ok = client.post(f"{base}/approve/{rid}/0", headers=mgr, json={"comment": "ok"})
    assert ok.status_code == 200 and ok.get_json()["status"] == "pending"
    assert stored_status(spec, report) == "pending_finance_approval"
    # A fresh token carries no MFA verification: the Finance step is refused...
    mfa_needed = client.post(f"{base}/approve/{rid}/1", headers=fin, json={})
    assert mfa_needed.status_code == 422 and mfa_needed.get_json()["code"] == "mfa_required"
    history = client.get(f"{base}/history/{rid}", headers=mgr).get_json()
    assert [(h["step"], h["verdict"]) for h in history["result"]] == [(0, "approve")]
    refused = client.post(f"{base}/reject/{rid}", headers=fin, json={"comment": "no"})
    assert refused.status_code == 422 and refused.get_json()["code"] == "mfa_required"
    # ...until the token passes the step-up (the authenticator from the enrolment page).
    from sqlalchemy import select

    from signoff.db.binding import bind_secret_owner
    from signoff.security.models import MfaTotp
    from signoff.security.totp import code_at, decrypt_secret, time_step

    with app.app_context():
        # The MFA tables show the app role one person's rows: the bound one's.
        bind_secret_owner(spec["db"].session, spec["users"]["fin"])
        row = spec["db"].session.scalar(
            select(MfaTotp).where(MfaTotp.user_id == spec["users"]["fin"])
        )
        if row is None:  # this test alone: enrol as the page would
            from signoff.security import mfa as mfa_service

            with As(spec, "fin") as fin_user:
                enrolment = mfa_service.begin_enrolment(spec["db"].session, fin_user)
                mfa_service.confirm_enrolment(
                    spec["db"].session, fin_user.id, code_at(enrolment.secret, time.time())
                )
            bind_secret_owner(spec["db"].session, spec["users"]["fin"])
            row = spec["db"].session.scalar(
                select(MfaTotp).where(MfaTotp.user_id == spec["users"]["fin"])
            )
        spec["db"].session.refresh(row)
        secret, last_used = decrypt_secret(row.secret_encrypted), row.last_used_step
    bad = client.post(f"{base}/mfa/verify", headers=fin, json={"code": "000000x"})
    assert bad.status_code in (400, 401, 422) and bad.get_json()["field"] == "code"
    now = time.time()
    # A code is accepted once: take the next time step if this one was used already.
    when = now + 30 if last_used is not None and last_used >= time_step(now) else now
    verified = client.post(f"{base}/mfa/verify", headers=fin, json={"code": code_at(secret, when)})
    assert verified.status_code == 200, verified.get_json()
    paid = client.post(f"{base}/approve/{rid}/1", headers=fin, json={"comment": "paid"})
    assert paid.status_code == 200 and paid.get_json()["status"] == "approved"
    assert stored_status(spec, report) == "approved"
    other_token = token("fin")  # the verification belongs to that token only
    with As(spec, "emp"):
        third = spec["ExpenseReport"](amount=Decimal("1400.00"), description="API 3")
        spec["db"].session.add(third)
        third.submit_for_approval()
        third_id = str(ApprovalWorkflowManager(app.appbuilder).request_for(third).id)
    assert client.post(f"{base}/approve/{third_id}/0", headers=mgr, json={}).status_code == 200
    again = client.post(f"{base}/approve/{third_id}/1", headers=other_token, json={})
    assert again.status_code == 422 and again.get_json()["code"] == "mfa_required"
    with As(spec, "emp"):
        other = spec["ExpenseReport"](amount=Decimal("1100.00"), description="API 2")
        spec["db"].session.add(other)
        other.submit_for_approval()
        other_id = str(ApprovalWorkflowManager(app.appbuilder).request_for(other).id)
    rejected = client.post(f"{base}/reject/{other_id}", headers=mgr, json={"comment": "no"})
    assert rejected.status_code == 200 and rejected.get_json()["status"] == "rejected"
    assert stored_status(spec, other) == "rejected"
    missing = client.get(f"{base}/history/{uuid.uuid4()}", headers=mgr)
    assert missing.status_code == 404


def test_mfa_enrolment_and_step_up_through_the_host_api(spec):
    """A Finance manager with no authenticator enrols through the API and decides the
    MFA step with the same token (enrolment counts as its verification)."""
    from signoff.approval.workflow_manager import ApprovalWorkflowManager
    from signoff.security.totp import code_at

    app = spec["app"]
    with app.app_context():
        sm = app.appbuilder.sm
        if sm.find_user(username="spec-fin3") is None:
            sm.add_user(
                "spec-fin3",
                "fin3",
                "Spec",
                "fin3@spec-snippets.test",
                [sm.find_role("Finance_Manager")],
                PASSWORD,
            )
    client = app.test_client()
    login = client.post(
        "/api/v1/security/login",
        json={"username": "spec-fin3", "password": PASSWORD, "provider": "db"},
    )
    fin3 = {"Authorization": f"Bearer {login.get_json()['access_token']}"}
    with As(spec, "emp"):
        report = spec["ExpenseReport"](amount=Decimal("1500.00"), description="API MFA")
        spec["db"].session.add(report)
        report.submit_for_approval()
        manager = ApprovalWorkflowManager(app.appbuilder)
        rid = str(manager.request_for(report).id)
    with As(spec, "mgr"):
        manager.approve_instance(report, 0)
    base = "/api/v1/approval-workflow"
    enrol = client.post(f"{base}/mfa/enroll", headers=fin3, json={})
    assert enrol.status_code == 200 and enrol.get_json()["otpauth_uri"].startswith("otpauth://")
    secret = enrol.get_json()["secret"]
    wrong = client.post(f"{base}/mfa/confirm", headers=fin3, json={"code": "123"})
    assert wrong.status_code == 422 and wrong.get_json()["field"] == "code"
    confirmed = client.post(
        f"{base}/mfa/confirm", headers=fin3, json={"code": code_at(secret, time.time())}
    )
    assert confirmed.status_code == 200 and len(confirmed.get_json()["recovery_codes"]) == 10
    again = client.post(f"{base}/mfa/enroll", headers=fin3, json={})
    assert again.status_code == 409 and again.get_json()["code"] == "already_enrolled"
    paid = client.post(f"{base}/approve/{rid}/1", headers=fin3, json={})
    assert paid.status_code == 200 and paid.get_json()["status"] == "approved"
    assert stored_status(spec, report) == "approved"
