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

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask, current_app, flash, g, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.basemanager import BaseManager
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
from signoff.security.actor import request_actor
from signoff.security.passwords import install_login_hash
from signoff.tenancy.models import Membership, MembershipRole, Tenant, TenantRole
from signoff.workflow.definitions import DefinitionError, parse_definitions
from signoff.workflow.manager import ApprovalWorkflowManager

log = logging.getLogger(__name__)

REQUIRED_TABLES = ("tenant", "membership", "approval_request", "audit_event")


class ApprovalWorkflowAddonManager(BaseManager):
    """Registers the approval engine, its views and the tenant binding on a FAB app."""

    def __init__(self, appbuilder: Any) -> None:
        super().__init__(appbuilder)
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        try:
            self._configure(app)
        except AddonLoadError:
            raise
        except Exception as exc:  # loud: FAB would only log a failing hook
            raise AddonLoadError(f"approval add-on failed to load: {exc}") from exc
        set_default_tenant_scope(app, self.tenant_scope)
        self.manager = ApprovalWorkflowManager(appbuilder, tenant_scope=self.tenant_scope)
        app.extensions["signoff_addon"] = self

    # FAB calls these inside a try/except that only logs; the work is done above.
    def pre_process(self) -> None:
        return None

    def register_views(self) -> None:
        return None

    def post_process(self) -> None:
        return None

    def _configure(self, app: Flask) -> None:
        for key, value in APPROVAL_DEFAULTS.items():
            app.config.setdefault(key, value)
        if not app.config["FAB_APPROVAL_ENABLED"]:
            raise AddonLoadError("FAB_APPROVAL_ENABLED is false")
        try:
            parse_definitions(app.config["FAB_APPROVAL_WORKFLOWS"] or {})
        except DefinitionError as exc:
            raise AddonLoadError(f"FAB_APPROVAL_WORKFLOWS is invalid: {exc}") from exc
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
                config=app.config.get("FAB_APPROVAL_CACHE_CONFIG")
                or {"CACHE_TYPE": "NullCache", "CACHE_NO_NULL_WARNING": True},
            )
        install_listener()
        # A database migrated by Signoff refuses ab_user.password to the app role.
        install_login_hash(self.appbuilder.sm)
        self.tenant_slug = app.config.get("FAB_APPROVAL_TENANT_SLUG", "default")
        self.tenant_id = self._ensure_tenant()

        @app.before_request
        def _bind_host_tenant() -> None:
            set_current_tenant(self.tenant_id)

        @app.teardown_request
        def _unbind(exc: BaseException | None) -> None:
            set_current_tenant(None)

        self.view = self.appbuilder.add_view(
            ApprovalWorkflowView,
            "Pending Approvals",
            icon="fa-check-square",
            category="Workflows",
            category_icon="fa-tasks",
        )
        self.grant_view_permissions()

    def grant_view_permissions(self) -> None:
        """With FAB_APPROVAL_AUTO_CREATE_PERMISSIONS (the default), every role but Public
        may open the approval views; what each user sees is decided by eligibility."""
        if not current_app.config["FAB_APPROVAL_AUTO_CREATE_PERMISSIONS"]:
            return
        sm = self.appbuilder.sm
        view_name = self.view.class_permission_name
        pvs = [sm.add_permission_view_menu(p, view_name) for p in self.view.base_permissions]
        for role in sm.get_all_roles():
            if role.name == sm.auth_role_public:
                continue
            for pv in pvs:
                sm.add_permission_role(role, pv)

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
            session.commit()
        self.grant_view_permissions()


def add_addon_manager(appbuilder: Any, manager_class: type = ApprovalWorkflowAddonManager) -> Any:
    """Register the add-on on an initialised AppBuilder (the spec's Quick Start call)."""
    manager = manager_class(appbuilder) if isinstance(manager_class, type) else manager_class
    appbuilder.addon_managers[f"{type(manager).__module__}.{type(manager).__name__}"] = manager
    return manager


def addon(app: Flask | None = None) -> ApprovalWorkflowAddonManager:
    target = app or current_app
    found = target.extensions.get("signoff_addon")
    if found is None:
        raise AddonLoadError(NOT_LOADED)
    return found


class ApprovalWorkflowView(BaseView):
    """The spec's "Pending Approvals" view: what waits for the current user."""

    route_base = "/approvals"
    default_view = "pending"
    # The host app's loader does not know Signoff's templates; the blueprint does.
    template_folder = str(Path(__file__).resolve().parent / "templates")

    @expose("/pending/")
    @has_access
    def pending(self) -> str:
        from signoff.workflow.queries import inbox

        items = inbox(self.appbuilder.session, g.user.id)
        return self.render_template("signoff/addon_pending.html", items=items)

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
            flash("Unknown decision", "danger")
            return redirect(url_for(".pending"))
        try:
            fn(
                self.appbuilder.session,
                actor=request_actor(),
                request_id=request_id,
                step_index=step,
                comment=request.form.get("comment"),
            )
            flash("Decision recorded", "success")
        except ActionError as exc:
            flash(exc.message, "danger")
        return redirect(url_for(".pending"))
