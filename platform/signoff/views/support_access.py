"""Support access: the tenant admin's grants, and the operator's read-only view.

``/t/<tenant_slug>/admin/support-access/`` (tenant ``Admin``): grant platform staff
read access for 1 to 72 hours with a reason, revoke it, see every grant and every
use. ``/operator/support/`` (FAB role ``Operator``): the tenants that granted
access, and, only while a grant is live, one tenant's overview (counts, members,
workflows, latest requests) and its requests, read-only. Each of those reads checks
the grant by PostgreSQL's clock and appends ``support.opened`` / ``support.read``
to the tenant's audit chain in the same transaction as the read; the page is shown
only once that transaction has committed. Without a live grant: 403 and no data.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import abort, flash, g, redirect, request, url_for
from flask_appbuilder import AppBuilder, expose, has_access
from flask_appbuilder.security.decorators import no_cache
from flask_appbuilder.security.sqla.models import User
from flask_babel import gettext as _
from sqlalchemy import select, text
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from signoff.audit.models import AuditEvent
from signoff.db.binding import bound_tenant
from signoff.db.ids import as_uuid
from signoff.errors import ActionError
from signoff.extensions import db
from signoff.languages import translated
from signoff.roles import ADMIN_ROLE
from signoff.tenancy import support
from signoff.tenancy.models import Membership, Tenant
from signoff.views.common import SignoffView, error_page, tenant_nav, user_names
from signoff.views.tenant_admin import usage_counts
from signoff.views.tenant_base import TenantScoped
from signoff.workflow.models import (
    ApprovalRequest,
    ApprovalStep,
    RequestComment,
    StepDecision,
    Workflow,
)

log = logging.getLogger(__name__)

#: Durations offered on the page (the API takes any whole number of hours in range).
HOUR_CHOICES = (1, 4, 8, 24, 48, 72)
SUPPORT_ACTIONS = ("support.opened", "support.read", "support.granted", "support.revoked")


def support_events(session: Session, limit: int = 50) -> list[AuditEvent]:
    """The bound tenant's latest support events (grants, revocations and uses)."""
    return list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action.in_(SUPPORT_ACTIONS))
            .order_by(AuditEvent.seq.desc())
            .limit(limit)
        )
    )


class SupportAccessAdminView(TenantScoped, SignoffView):
    """The tenant admin's page: grant, revoke, and see grants and uses."""

    route_base = "/t/<tenant_slug>/admin/support-access"
    default_view = "index"
    tenant_roles = (ADMIN_ROLE,)

    @expose("/")
    @no_cache
    def index(self) -> str:
        session = db.session
        now = support.database_now(session)
        grants = [support.grant_dict(r, now) for r in support.list_grants(session, limit=200)]
        events = support_events(session)
        names = user_names(
            session,
            [r["granted_by"] for r in grants]
            + [r["revoked_by"] for r in grants]
            + [e.actor_id for e in events],
        )
        return self.render(
            "signoff/admin_support_access.html",
            nav=tenant_nav(session),
            grants=grants,
            events=events,
            names=names,
            hours=HOUR_CHOICES,
            live=[r for r in grants if r["active"]],
        )

    @expose("/grant", methods=["POST"])
    def grant(self) -> Response:
        session = db.session
        try:
            row = support.grant(
                session,
                granted_by=int(g.user.id),
                hours=request.form.get("hours"),
                reason=request.form.get("reason"),
            )
            until = row.expires_at
            session.commit()
        except ActionError as exc:
            session.rollback()
            flash(translated(exc.message), "danger")
        else:
            flash(
                _("Support access granted until %(until)s UTC.", until=f"{until:%Y-%m-%d %H:%M}"),
                "success",
            )
        return redirect(url_for("SupportAccessAdminView.index"))

    @expose("/<grant_id>/revoke", methods=["POST"])
    def revoke(self, grant_id: str) -> Response:
        session = db.session
        try:
            row = support.get_grant_for(session, grant_id)
        except ActionError:
            abort(404)
        if support.revoke(session, row, by=int(g.user.id)):
            session.commit()
            flash(
                "Support access revoked: platform staff can no longer open this tenant.", "success"
            )
        return redirect(url_for("SupportAccessAdminView.index"))


def _person(user: User | None) -> dict[str, Any]:
    if user is None:
        return {"name": "?", "email": None}
    name = " ".join(p for p in (user.first_name, user.last_name) if p and p != "-")
    return {"name": name or user.username, "email": user.email, "username": user.username}


class OperatorSupportView(SignoffView):
    """The operator's read-only view of a tenant that granted support access."""

    route_base = "/operator/support"
    default_view = "index"
    class_permission_name = "Operator"
    method_permission_name = {"index": "read", "tenant": "read", "request_page": "read"}
    signoff_operator_view = True

    def _nav(self) -> dict[str, Any]:
        return {"operator": True, "user": g.user}

    def _tenant(self, tenant_id: str) -> Tenant:
        tid = as_uuid(tenant_id)
        tenant = db.session.get(Tenant, tid) if tid else None
        if tenant is None:
            abort(404)
        return tenant

    def _refused(self, tenant: Tenant) -> Response:
        db.session.rollback()
        log.warning(
            "support access refused: %s has no live grant from tenant %s (%s)",
            g.user.username,
            tenant.slug,
            request.path,
        )
        return error_page(
            403,
            "No support access",
            "This organisation has not granted support access, or its grant has ended. "
            "Its admin can grant it under Admin → Support access.",
        )

    @expose("/")
    @has_access
    @no_cache
    def index(self) -> str:
        """Tenants with a live grant: the grant's dates and reason only, no tenant data."""
        session = db.session
        # One statement for every tenant (signoff.operator_support_grants, migration
        # 0045), then the tenants that granted, by id: their id, slug and name as plain
        # rows, not ORM tenants, which the rollback below would expire and the page
        # would then load again one by one.
        grants = session.execute(
            text(
                "SELECT tenant_id, id, granted_by, reason, created_at, expires_at "
                "FROM signoff.operator_support_grants()"
            )
        ).all()
        tenants = {
            t.id: t
            for t in session.execute(
                select(Tenant.id, Tenant.slug, Tenant.name).where(
                    Tenant.id.in_([r.tenant_id for r in grants])
                )
            )
        }
        rows = [
            (tenants[r.tenant_id], {**r._asdict(), "active": True})
            for r in grants
            if r.tenant_id in tenants
        ]
        session.rollback()
        return self.render("signoff/operator_support.html", nav=self._nav(), rows=rows)

    @expose("/<tenant_id>/")
    @has_access
    @no_cache
    def tenant(self, tenant_id: str) -> str | Response:
        session = db.session
        tenant = self._tenant(tenant_id)
        slug, name, tid = tenant.slug, tenant.name, tenant.id
        with bound_tenant(tid, session):
            live = support.active_grant(session)
            if live is None:
                return self._refused(tenant)
            grant = support.grant_dict(live, support.database_now(session))
            usage = usage_counts(session)
            members = [
                {**_person(u), "roles": m.role_names, "active": m.active}
                for m, u in session.execute(
                    select(Membership, User)
                    .join(User, User.id == Membership.user_id)
                    .order_by(Membership.active.desc(), User.username)
                    .limit(200)
                ).all()
            ]
            workflows = [
                {"key": w.key, "name": w.name, "version": w.current_version, "active": w.active}
                for w in session.scalars(select(Workflow).order_by(Workflow.key))
            ]
            requests = [
                {
                    "id": r.id,
                    "title": r.title,
                    "workflow": r.workflow_key,
                    "status": r.status,
                    "requester_id": r.requester_id,
                    "submitted_at": r.submitted_at,
                }
                for r in session.scalars(
                    select(ApprovalRequest).order_by(ApprovalRequest.submitted_at.desc()).limit(50)
                )
            ]
            names = user_names(session, [r["requester_id"] for r in requests])
            grantor = user_names(session, [grant["granted_by"]])
            support.record_use(
                session,
                live,
                staff_id=int(g.user.id),
                staff_name=g.user.username,
                action="support.opened",
                page="overview",
                object_id=str(tid),
            )
            session.commit()
        return self.render(
            "signoff/operator_support_tenant.html",
            nav=self._nav(),
            tenant={"id": tid, "slug": slug, "name": name},
            grant=grant,
            grantor=grantor,
            usage=usage,
            members=members,
            workflows=workflows,
            requests=requests,
            names=names,
        )

    @expose("/<tenant_id>/requests/<request_id>")
    @has_access
    @no_cache
    def request_page(self, tenant_id: str, request_id: str) -> str | Response:
        session = db.session
        tenant = self._tenant(tenant_id)
        slug, name, tid = tenant.slug, tenant.name, tenant.id
        rid = as_uuid(request_id)
        with bound_tenant(tid, session):
            live = support.active_grant(session)
            if live is None:
                return self._refused(tenant)
            grant = support.grant_dict(live, support.database_now(session))
            req = session.get(ApprovalRequest, rid) if rid else None
            if req is None:
                session.rollback()
                abort(404)
            detail = _request_detail(session, req)
            support.record_use(
                session,
                live,
                staff_id=int(g.user.id),
                staff_name=g.user.username,
                action="support.read",
                page="request",
                object_type="approval_request",
                object_id=str(req.id),
            )
            session.commit()
        return self.render(
            "signoff/operator_support_request.html",
            nav=self._nav(),
            tenant={"id": tid, "slug": slug, "name": name},
            grant=grant,
            **detail,
        )


def _request_detail(session: Session, req: ApprovalRequest) -> dict[str, Any]:
    """One request, its steps, decisions and comments, as plain data (read under RLS)."""
    steps = [
        {"index": s.step_index, "name": s.name, "status": s.status, "pattern": s.pattern}
        for s in session.scalars(
            select(ApprovalStep)
            .where(ApprovalStep.request_id == req.id)
            .order_by(ApprovalStep.step_index)
        )
    ]
    decisions = list(
        session.scalars(
            select(StepDecision)
            .where(StepDecision.request_id == req.id)
            .order_by(StepDecision.decided_at)
        )
    )
    comments = list(
        session.scalars(
            select(RequestComment)
            .where(RequestComment.request_id == req.id)
            .order_by(RequestComment.created_at)
        )
    )
    names = user_names(
        session,
        [req.requester_id] + [d.actor_id for d in decisions] + [c.author_id for c in comments],
    )
    return {
        "req": {
            "id": req.id,
            "title": req.title,
            "workflow": req.workflow_key,
            "version": req.version,
            "status": req.status,
            "requester": names.get(req.requester_id, req.requester_id),
            "submitted_at": req.submitted_at,
            "input_data": dict(req.input_data or {}),
        },
        "steps": steps,
        "decisions": [
            {
                "step": d.step_name,
                "verdict": d.verdict,
                "by": names.get(d.actor_id, d.actor_id),
                "comment": d.comment,
                "at": d.decided_at,
            }
            for d in decisions
        ],
        "comments": [
            {"by": names.get(c.author_id, c.author_id), "body": c.body, "at": c.created_at}
            for c in comments
        ],
    }


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(SupportAccessAdminView())
    appbuilder.add_view_no_menu(OperatorSupportView())
