"""Signoff as a Flask-AppBuilder add-on inside an existing FAB application.

Add ``"signoff.addon.ApprovalWorkflowAddonManager"`` to ``ADDON_MANAGERS`` (or call
:func:`add_addon_manager`), point the app at a PostgreSQL database migrated with
``signoff db upgrade``, and connect as ``signoff_app``. The host app is one
tenant (``FAB_APPROVAL_TENANT_SLUG``, default ``default``): the add-on binds it
for every request, and mirrors the host's FAB users and their FAB role names
into that tenant's memberships and roles, so ``required_role: Manager`` means the
FAB role ``Manager``.

FAB logs and skips an add-on whose hooks raise. This one does all its checks in
its constructor, which FAB does not guard, so a misconfigured add-on stops the
app with a clear message instead of silently disappearing.
"""

from __future__ import annotations

import copy
import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask, current_app, flash, g, has_app_context, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.api import BaseApi
from flask_appbuilder.api import expose as api_expose
from flask_appbuilder.basemanager import BaseManager
from flask_appbuilder.security.decorators import permission_name, protect
from flask_babel import gettext as _
from sqlalchemy import inspect, select
from werkzeug.wrappers import Response

from signoff.config import APPROVAL_DEFAULTS
from signoff.db.binding import (
    bound_tenant,
    install_listener,
    set_current_tenant,
    set_default_tenant_scope,
)
from signoff.errors import NOT_LOADED, ActionError, AddonLoadError
from signoff.extensions import cache
from signoff.languages import install_filters, install_in_host, translated
from signoff.limiter import app_has_limiter, limiter
from signoff.security.actor import request_actor
from signoff.security.passwords import install_login_hash
from signoff.tenancy.models import Membership, MembershipRole, Tenant, TenantRole
from signoff.workflow.actions import ADOPTED, after_commit_listeners, in_transaction_listeners
from signoff.workflow.manager import ApprovalWorkflowManager, follow_host_model
from signoff.workflow.settings import SettingsError, cache_config, check_settings

log = logging.getLogger(__name__)

REQUIRED_TABLES = ("tenant", "membership", "approval_request", "audit_event")
MENU_NAMES = ("Workflows", "Pending Approvals")


class ApprovalWorkflowAddonManager(BaseManager):
    """Registers the approval engine, its views and the tenant binding on a FAB app."""

    def __init__(self, appbuilder: Any) -> None:
        super().__init__(appbuilder)
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        try:
            self.enabled = self._configure(app)
        except AddonLoadError:
            raise
        except Exception as exc:  # loud: FAB would only log a failing hook
            raise AddonLoadError(f"approval add-on failed to load: {exc}") from exc
        if not self.enabled:
            log.warning("FAB_APPROVAL_ENABLED is False: the approval add-on is switched off")
            return
        set_default_tenant_scope(app, self.tenant_scope)
        self.manager = ApprovalWorkflowManager(appbuilder, tenant_scope=self.tenant_scope)
        app.extensions["signoff_addon"] = self

    @classmethod
    def register(cls, appbuilder: Any, app: Flask) -> ApprovalWorkflowAddonManager:
        """The one-line registration in place of the specification's
        ``appbuilder.add_addon_manager(ApprovalWorkflowAddonManager(appbuilder))``
        (FAB 5 has no ``add_addon_manager`` and builds add-ons inside an app context)."""
        with app.app_context():
            manager: ApprovalWorkflowAddonManager = add_addon_manager(appbuilder, cls(appbuilder))
        return manager

    # FAB calls these inside a try/except that only logs; the work is done above.
    def pre_process(self) -> None:
        return None

    def register_views(self) -> None:
        return None

    def post_process(self) -> None:
        return None

    def _configure(self, app: Flask) -> bool:
        """Check the settings and install everything; False when switched off."""
        for key, value in APPROVAL_DEFAULTS.items():
            app.config.setdefault(key, copy.deepcopy(value))
        try:
            check_settings(app.config, addon=True)
        except SettingsError as exc:
            raise AddonLoadError(str(exc)) from exc
        if not app.config["FAB_APPROVAL_ENABLED"]:
            return False
        engine = self.appbuilder.session.get_bind()
        if engine.dialect.name != "postgresql":
            raise AddonLoadError(
                "the approval add-on needs PostgreSQL (row-level security, advisory locks); "
                f"this app uses {engine.dialect.name}"
            )
        missing = [t for t in REQUIRED_TABLES if not inspect(engine).has_table(t)]
        if missing:
            raise AddonLoadError(
                f"tables {missing} are missing: run `signoff db upgrade` on this database"
            )
        if "cache" not in app.extensions or cache not in app.extensions.get("cache", {}):
            cache.init_app(
                app,
                config=cache_config(app.config)
                or {"CACHE_TYPE": "NullCache", "CACHE_NO_NULL_WARNING": True},
            )
        install_listener()
        install_filters(app)  # the add-on's pages and e-mails use Signoff's filters
        # Signoff's catalogue beside the host's; its pages follow the browser's language.
        install_in_host(app, ("ApprovalWorkflowView.", "AuthView."))
        # A database migrated by Signoff refuses ab_user.password to the app role.
        install_login_hash(self.appbuilder.sm)
        if follow_host_model not in in_transaction_listeners:
            in_transaction_listeners.append(follow_host_model)
        if deliver_in_process not in after_commit_listeners:
            after_commit_listeners.append(deliver_in_process)
        self.tenant_slug = app.config.get("FAB_APPROVAL_TENANT_SLUG", "default")
        self.tenant_id = self._ensure_tenant()

        @app.before_request
        def _bind_host_tenant() -> None:
            set_current_tenant(self.tenant_id)

        @app.teardown_request
        def _unbind(exc: BaseException | None) -> None:
            set_current_tenant(None)

        if not app_has_limiter():
            # The per-user decision budget (FAB_APPROVAL_MAX_APPROVALS_PER_WINDOW) needs
            # the limiter's storage: the cache's Redis, else the process's memory.
            redis_url = (cache_config(app.config) or {}).get("CACHE_REDIS_URL") or app.config.get(
                "SIGNOFF_REDIS_URL"
            )
            app.config.setdefault("RATELIMIT_STORAGE_URI", redis_url or "memory://")
            app.config.setdefault("RATELIMIT_KEY_PREFIX", "signoff-rl")
            app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
            # FAB sets RATELIMIT_ENABLED False for its own limiter (already built); the
            # decision budget is governed by the FAB_APPROVAL_* keys, not that switch.
            had = app.config.get("RATELIMIT_ENABLED")
            app.config["RATELIMIT_ENABLED"] = True
            try:
                limiter.init_app(app)
            finally:
                app.config["RATELIMIT_ENABLED"] = had
        # The view without a menu item: the specification's step 4 adds it with
        # add_view(ApprovalWorkflowView, "Pending Approvals", ...); if the host app does
        # not, the first request adds the same item, so it is in the menu exactly once.
        self.view = self.appbuilder.add_view_no_menu(ApprovalWorkflowView)
        self.mfa_view = self.appbuilder.add_view_no_menu(AuthView)
        self.api = self.appbuilder.add_api(ApprovalWorkflowHostApi)
        self._menu_checked = False
        self._granted_roles: set[int] = set()

        @app.before_request
        def _first_request() -> None:
            if not self._menu_checked:
                # The Quick Start sets FAB_APPROVAL_WORKFLOWS after registering the
                # add-on (its step 2 follows step 1): check again before serving.
                try:
                    check_settings(app.config, addon=True)
                except SettingsError as exc:
                    raise AddonLoadError(str(exc)) from exc
                self._menu_checked = True
                self.ensure_menu()

        @app.before_request
        def _grant_new_roles() -> None:
            # A role created after start-up gets the views on its first visit, before
            # FAB's has_access looks (no restart, no manager call needed).
            endpoint = request.endpoint or ""
            if not endpoint.startswith(("ApprovalWorkflowView.", "AuthView.")):
                return
            user = getattr(g, "user", None)
            if user is None or not getattr(user, "is_authenticated", False):
                return
            if {r.id for r in user.roles} - self._granted_roles:
                self.grant_view_permissions()

        self.grant_view_permissions()
        return True

    def ensure_menu(self) -> None:
        """Add "Pending Approvals" under "Workflows" unless the host app added it."""
        for item in self.appbuilder.menu.menu:
            for entry in [item, *(item.childs or [])]:
                if isinstance(getattr(entry, "baseview", None), ApprovalWorkflowView):
                    return
        self.appbuilder.add_link(
            "Pending Approvals",
            href="ApprovalWorkflowView.pending",
            icon="fa-check-square",
            category="Workflows",
            category_icon="fa-tasks",
            baseview=self.view,
        )

    def grant_view_permissions(self) -> None:
        """With FAB_APPROVAL_AUTO_CREATE_PERMISSIONS (the default), every role but Public
        may open the approval views; what each user sees is decided by eligibility."""
        if not current_app.config["FAB_APPROVAL_AUTO_CREATE_PERMISSIONS"]:
            return
        sm = self.appbuilder.sm
        pvs = [
            sm.add_permission_view_menu(p, view.class_permission_name)
            for view in (self.view, self.mfa_view, self.api)
            for p in view.base_permissions
        ] + [sm.add_permission_view_menu("menu_access", m) for m in MENU_NAMES]
        for role in sm.get_all_roles():
            if role.name == sm.auth_role_public:
                continue
            for pv in pvs:
                if pv not in role.permissions:
                    sm.add_permission_role(role, pv)
            self._granted_roles.add(role.id)

    def _ensure_tenant(self) -> uuid.UUID:
        session = self.appbuilder.session
        tenant = session.scalars(select(Tenant).where(Tenant.slug == self.tenant_slug)).first()
        if tenant is None:
            tenant = Tenant(slug=self.tenant_slug, name=current_app.config.get("APP_NAME", "App"))
            session.add(tenant)
            session.commit()
        return tenant.id

    @contextmanager
    def tenant_scope(self, session: Any) -> Iterator[None]:
        """The host app's one tenant, its users mirrored first (the manager's scope)."""
        self.sync_members()
        with bound_tenant(self.tenant_id, session):
            yield

    def sync_members(self) -> None:
        """Mirror every active FAB user and their FAB role names into the host tenant."""
        session = self.appbuilder.session
        users = session.scalars(select(self.appbuilder.sm.user_model)).all()
        with bound_tenant(self.tenant_id, session):
            roles = {r.name: r for r in session.scalars(select(TenantRole))}
            members = {m.user_id: m for m in session.scalars(select(Membership))}
            links = set(
                session.execute(select(MembershipRole.membership_id, MembershipRole.role_id)).all()
            )
            for user in users:
                membership = members.get(user.id)
                if membership is None:
                    membership = Membership(user_id=user.id)
                    session.add(membership)
                    session.flush()
                membership.active = bool(user.active)
                for fab_role in user.roles:
                    role = roles.get(fab_role.name)
                    if role is None:
                        role = roles[fab_role.name] = TenantRole(name=fab_role.name)
                        session.add(role)
                        session.flush()
                    if (membership.id, role.id) not in links:
                        session.add(MembershipRole(membership_id=membership.id, role_id=role.id))
                        links.add((membership.id, role.id))
            adopted = session.info.get(ADOPTED)
            if adopted is not None:
                # The manager's call owns the transaction: it commits, then grants.
                session.flush()
                adopted.append(self.grant_view_permissions)
                return
            session.commit()
        self.grant_view_permissions()


def deliver_in_process(tenant_id: uuid.UUID, request_id: uuid.UUID, kinds: list[str]) -> None:
    """After a decision commits in a host app, deliver its notifications at once, in
    this process (a host app has no Signoff worker): e-mail when
    ``FAB_APPROVAL_EMAIL_NOTIFICATIONS`` is on and ``SIGNOFF_SMTP_URL`` is set, Slack when
    ``FAB_APPROVAL_SLACK_NOTIFICATIONS`` is on. A failed delivery is kept for retry
    (``signoff notifications``) and never undoes the decision."""
    if not has_app_context():
        return
    found = current_app.extensions.get("signoff_addon")
    if found is None or tenant_id != found.tenant_id:
        return
    cfg = current_app.config
    mail = bool(cfg.get("FAB_APPROVAL_EMAIL_NOTIFICATIONS") and cfg.get("SIGNOFF_SMTP_URL"))
    if not (mail or cfg.get("FAB_APPROVAL_SLACK_NOTIFICATIONS")):
        return
    from signoff.notifications.dispatch import dispatch_tenant

    try:
        dispatch_tenant(found.appbuilder.session, tenant_id, request_id=request_id)
    except Exception:  # delivery must never undo a committed decision
        log.exception("in-process notification delivery failed")
        found.appbuilder.session.rollback()


def add_addon_manager(appbuilder: Any, manager_class: type = ApprovalWorkflowAddonManager) -> Any:
    """Register the add-on on an initialised AppBuilder (the spec's Quick Start call)."""
    manager = manager_class(appbuilder) if isinstance(manager_class, type) else manager_class
    appbuilder.addon_managers[f"{type(manager).__module__}.{type(manager).__name__}"] = manager
    return manager


def addon(app: Flask | None = None) -> ApprovalWorkflowAddonManager:
    target = app or current_app
    found = target.extensions.get("signoff_addon")
    if found is None:
        if target.config.get("FAB_APPROVAL_ENABLED") is False:
            raise AddonLoadError("the approval add-on is switched off (FAB_APPROVAL_ENABLED)")
        raise AddonLoadError(NOT_LOADED)
    return found


def _safe_next(target: str | None, default: str) -> str:
    """Only a path on this site (``/...``, never ``//host``) is followed after MFA."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


class ApprovalWorkflowView(BaseView):
    """The spec's "Pending Approvals" view: what waits for the current user. A step
    that requires MFA takes the authenticator code in place, next to its buttons."""

    route_base = "/approvals"
    default_view = "pending"
    #: Fixed, so a second instance (the specification's ``add_view`` of a view the
    #: add-on registered already) builds the same menu URL.
    endpoint = "ApprovalWorkflowView"
    # The host app's loader does not know Signoff's templates; the blueprint does.
    template_folder = str(Path(__file__).resolve().parent / "templates")

    @expose("/pending/")
    @has_access
    def pending(self) -> str:
        from signoff.security import mfa
        from signoff.workflow.engine import step_label
        from signoff.workflow.queries import inbox

        session = self.appbuilder.session
        items = inbox(session, g.user.id)
        return self.render_template(
            "signoff/addon_pending.html",
            items=items,
            mfa_enrolled=mfa.is_enrolled(session, g.user.id),
            step_label=step_label,
        )

    @expose("/decide/<request_id>/<int:step>", methods=["POST"])
    @has_access
    def decide(self, request_id: str, step: int) -> Response:
        from signoff.workflow import actions

        verdict = request.form.get("verdict", "approve")
        choices: dict[str, Callable[..., actions.ActionResult]] = {
            "approve": actions.do_approve,
            "reject": actions.do_reject,
        }
        fn = choices.get(verdict)
        if fn is None:
            flash(_("Unknown decision"), "danger")
            return redirect(url_for(".pending"))
        code = (request.form.get("mfa_code") or "").strip()
        if code:
            from signoff.errors import MfaError
            from signoff.security import mfa

            try:
                mfa.verify_code(self.appbuilder.session, g.user.id, code)
            except MfaError as exc:
                flash(translated(exc.message), "danger")
                return redirect(url_for(".pending"))
        from signoff.views.wording import decision_message

        try:
            result = fn(
                self.appbuilder.session,
                actor=request_actor(),
                request_id=request_id,
                step_index=step,
                comment=request.form.get("comment"),
            )
            # In people's words, as in the portal ("Approved. Waiting for the next step: ...").
            flash(
                decision_message(self.appbuilder.session, verdict, result.request_id, step),
                "success",
            )
        except ActionError as exc:
            if exc.code == "mfa_required":
                flash(
                    _("This step needs your authenticator code: enter it and decide again."),
                    "warning",
                )
            else:
                flash(translated(exc.message), "danger")
        return redirect(url_for(".pending"))


class AuthView(BaseView):
    """MFA in the host app, for its own FAB login: enrol an authenticator, and the
    step-up check a ``requires_mfa`` step needs (fresh for ``FAB_APPROVAL_MFA_TIMEOUT``).

    Named ``AuthView`` so the specification's ``url_for('AuthView.mfa_verification')``
    works as written (FAB registers only its subclasses, ``AuthDBView``...).
    """

    route_base = "/approvals/mfa"
    default_view = "mfa_verification"
    endpoint = "AuthView"
    template_folder = str(Path(__file__).resolve().parent / "templates")

    def _next(self) -> str:
        return _safe_next(request.values.get("next"), url_for("ApprovalWorkflowView.pending"))

    @expose("/verify/", methods=["GET", "POST"])
    @has_access
    def mfa_verification(self) -> Any:
        from signoff.errors import MfaError
        from signoff.security import mfa

        session = self.appbuilder.session
        if not mfa.is_enrolled(session, g.user.id):
            return redirect(url_for(".mfa_enrolment", next=self._next()))
        message = None
        if request.method == "POST":
            try:
                mfa.verify_code(session, g.user.id, request.form.get("code", ""))
                return redirect(self._next())
            except MfaError as exc:
                message = translated(exc.message)
        return self.render_template(
            "signoff/addon_mfa_verify.html", next=self._next(), message=message
        )

    @expose("/enrol/", methods=["GET", "POST"])
    @has_access
    def mfa_enrolment(self) -> Any:
        from signoff.errors import MfaError
        from signoff.security import mfa

        session = self.appbuilder.session
        if mfa.is_enrolled(session, g.user.id):
            return redirect(self._next())
        message = None
        if request.method == "POST":
            try:
                codes = mfa.confirm_enrolment(session, g.user.id, request.form.get("code", ""))
                return self.render_template(
                    "signoff/addon_mfa_codes.html", codes=codes, next=self._next()
                )
            except MfaError as exc:
                message = translated(exc.message)
        enrolment = mfa.begin_enrolment(session, g.user, restart=False)
        return self.render_template(
            "signoff/addon_mfa_enrol.html",
            enrolment=enrolment,
            next=self._next(),
            message=message,
        )


class ApprovalWorkflowHostApi(BaseApi):
    """The specification's four REST endpoints in the host app, with the host's own
    FAB authentication (a JWT from its ``/api/v1/security/login``; no cookie login, so
    no cross-site POST can decide)::

        GET  /api/v1/approval-workflow/pending
        POST /api/v1/approval-workflow/approve/<id>/<step>   (0-based step)
        POST /api/v1/approval-workflow/reject/<id>           (your active step)
        GET  /api/v1/approval-workflow/history/<id>

    and ``POST /api/v1/approval-workflow/mfa/enroll``, ``/mfa/confirm`` (``{"code"}``)
    and ``/mfa/verify`` (``{"code"}``): enrolment, and the step-up a ``requires_mfa``
    step needs, for this token. Decisions go through the actions
    (self-approval, eligibility, MFA, the lock, the decision budget: 429). Errors:
    ``{"code", "message"}`` with the action's status.
    """

    resource_name = "approval-workflow"
    allow_browser_login = False
    class_permission_name = "ApprovalWorkflowHostApi"
    base_permissions = ["can_read", "can_write"]

    def _error(self, exc: ActionError) -> Response:
        from flask import jsonify

        answer: Response = jsonify(exc.to_dict())
        answer.status_code = exc.status
        return answer

    def _decide(self, fn: Callable[..., Any], request_id: str, step: int | None) -> Response:
        from signoff.workflow.queries import get_request_for

        body = request.get_json(silent=True) or {}
        session = self.appbuilder.session
        try:
            req = get_request_for(session, user_id=g.user.id, request_id=request_id)
            result = fn(
                session,
                actor=request_actor(method="api"),
                request_id=req.id,
                step_index=step if step is not None else body.get("step"),
                comment=body.get("comment"),
            )
        except ActionError as exc:
            session.rollback()
            return self._error(exc)
        return self.response(200, **result.to_dict())

    @api_expose("/pending", methods=["GET"])
    @protect()
    @permission_name("read")
    def pending(self) -> Response:
        from signoff.workflow.queries import inbox

        items = inbox(self.appbuilder.session, g.user.id)
        return self.response(200, result=[i.to_dict() for i in items], count=len(items))

    @api_expose("/approve/<request_id>/<int:step>", methods=["POST"])
    @protect()
    @permission_name("write")
    def approve(self, request_id: str, step: int) -> Response:
        from signoff.workflow import actions

        return self._decide(actions.do_approve, request_id, step)

    @api_expose("/reject/<request_id>", methods=["POST"])
    @protect()
    @permission_name("write")
    def reject(self, request_id: str) -> Response:
        from signoff.workflow import actions

        return self._decide(actions.do_reject, request_id, None)

    def _mfa_error(self, exc: Any) -> Response:
        answer = self._error(ActionError(exc.code, exc.message, field="code"))
        answer.status_code = exc.status
        return answer

    @api_expose("/mfa/enroll", methods=["POST"])
    @protect()
    @permission_name("write")
    def mfa_enroll(self) -> Response:
        """Start (or show again) the pending authenticator: ``secret``, ``otpauth_uri``,
        ``qr`` (a data URI); 409 ``already_enrolled`` once one is active."""
        from signoff.errors import MfaError
        from signoff.security import mfa

        try:
            enrolment = mfa.begin_enrolment(self.appbuilder.session, g.user, restart=False)
        except MfaError as exc:
            return self._mfa_error(exc)
        return self.response(200, **enrolment.to_dict())

    @api_expose("/mfa/confirm", methods=["POST"])
    @protect()
    @permission_name("write")
    def mfa_confirm(self) -> Response:
        """Activate the authenticator with ``{"code"}``: the ten recovery codes, once;
        it counts as this token's verification."""
        from signoff.errors import MfaError
        from signoff.security import mfa

        code = (request.get_json(silent=True) or {}).get("code")
        if not isinstance(code, str) or not code.strip():
            return self._error(ActionError("invalid", "code is required", field="code"))
        try:
            codes = mfa.confirm_enrolment(self.appbuilder.session, g.user.id, code)
        except MfaError as exc:
            return self._mfa_error(exc)
        return self.response(200, recovery_codes=codes)

    @api_expose("/mfa/verify", methods=["POST"])
    @protect()
    @permission_name("write")
    def mfa_verify(self) -> Response:
        """Step-up for this token: ``{"code": "123456"}`` from the authenticator set up
        at ``/approvals/mfa/enrol/``; fresh for ``FAB_APPROVAL_MFA_TIMEOUT`` seconds, for
        this token only."""
        from signoff.errors import MfaError
        from signoff.security import mfa

        body = request.get_json(silent=True) or {}
        code = body.get("code")
        if not isinstance(code, str) or not code.strip():
            return self._error(ActionError("invalid", "code is required", field="code"))
        try:
            at = mfa.verify_code(self.appbuilder.session, g.user.id, code)
        except MfaError as exc:
            return self._mfa_error(exc)
        return self.response(200, verified_at=at.isoformat())

    @api_expose("/history/<request_id>", methods=["GET"])
    @protect()
    @permission_name("read")
    def history(self, request_id: str) -> Response:
        from signoff.workflow.manager import history
        from signoff.workflow.queries import get_request_for

        session = self.appbuilder.session
        try:
            req = get_request_for(session, user_id=g.user.id, request_id=request_id, read_only=True)
        except ActionError as exc:
            return self._error(exc)
        return self.response(200, request_id=str(req.id), result=history(session, req.id))
