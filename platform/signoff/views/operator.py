"""Operator console (FAB role ``Operator``; the break-glass ``Admin`` too) under ``/operator/``.

Tenants (status, plan, suspend/reactivate, change plan), the platform-wide audit
verification (``signoff.audit_verify_all``), health, and metrics across tenants.
Operators see the ``tenant`` rows (global) and **counts** only: the counts are
taken by binding each tenant in turn (docs/ARCHITECTURE.md §2: jobs bind explicitly), and
no tenant row other than a count ever reaches the page. A suspension or plan
change is recorded in that tenant's own audit chain. A tenant's data is read only
through :mod:`signoff.views.support_access`, while that tenant grants support access.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from flask import abort, flash, g, redirect, request, url_for
from flask_appbuilder import AppBuilder, expose, has_access
from flask_appbuilder.security.decorators import no_cache
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from signoff.billing import plans as billing_plans
from signoff.billing import service as billing_service
from signoff.db.binding import bound_tenant
from signoff.db.ids import as_uuid
from signoff.errors import ActionError
from signoff.extensions import db
from signoff.languages import translated
from signoff.notifications.dispatch import retry_all_dead
from signoff.notifications.models import NotificationDelivery
from signoff.tenancy.models import PLANS, TENANT_STATUSES, Membership, Tenant
from signoff.views.common import SignoffView
from signoff.workflow.models import ApprovalRequest, StepDecision, Workflow


@dataclass(frozen=True)
class TenantCounts:
    members: int
    workflows: int
    requests: int
    pending: int
    decisions: int
    dead_deliveries: int = 0


def tenant_counts(session: Session, tenant_id: uuid.UUID) -> TenantCounts:
    """Counts of one tenant's rows, read with that tenant bound (rolled back after)."""
    with bound_tenant(tenant_id, session):
        row = session.execute(
            select(
                select(func.count())
                .select_from(Membership)
                .where(Membership.active.is_(True))
                .scalar_subquery(),
                select(func.count())
                .select_from(Workflow)
                .where(Workflow.active.is_(True))
                .scalar_subquery(),
                select(func.count()).select_from(ApprovalRequest).scalar_subquery(),
                select(func.count())
                .select_from(ApprovalRequest)
                .where(ApprovalRequest.status == "pending")
                .scalar_subquery(),
                select(func.count()).select_from(StepDecision).scalar_subquery(),
                select(func.count())
                .select_from(NotificationDelivery)
                .where(NotificationDelivery.status == "dead")
                .scalar_subquery(),
            )
        ).one()
    return TenantCounts(*(int(v or 0) for v in row))


def platform_metrics(session: Session) -> tuple[list[tuple[Tenant, TenantCounts]], dict[str, int]]:
    tenants = list(session.scalars(select(Tenant).order_by(Tenant.slug)))
    rows = []
    for tenant in tenants:
        rows.append((tenant, tenant_counts(session, tenant.id)))
    totals = {
        "tenants": len(tenants),
        "active": sum(1 for t in tenants if t.status == "active"),
        "suspended": sum(1 for t in tenants if t.status == "suspended"),
        "members": sum(c.members for _, c in rows),
        "requests": sum(c.requests for _, c in rows),
        "pending": sum(c.pending for _, c in rows),
        "decisions": sum(c.decisions for _, c in rows),
    }
    return rows, totals


def billing_overview(
    session: Session, tenants: list[Tenant]
) -> tuple[dict[Any, dict[str, Any]], dict[str, Any]]:
    """Each tenant's billing facts (read with that tenant bound, one at a time), the
    monthly recurring revenue and counts by plan and status."""
    facts: dict[Any, dict[str, Any]] = {}
    for tenant in tenants:
        with bound_tenant(tenant.id, session):
            facts[tenant.id] = billing_service.overview_row(session)
        session.commit()
    by_plan: dict[str, int] = {}
    for tenant in tenants:
        by_plan[tenant.plan] = by_plan.get(tenant.plan, 0) + 1
    totals = {
        "enabled": billing_plans.enabled(),
        "mrr": sum(f["mrr"] for f in facts.values()),
        "currency": billing_plans.all_plans()[0].currency,
        "past_due": sum(1 for f in facts.values() if f["status"] == "past_due"),
        "subscribed": sum(1 for f in facts.values() if f["mrr"]),
        "by_plan": by_plan,
    }
    return facts, totals


def audit_status(session: Session) -> tuple[list[Any] | None, str | None]:
    try:
        from signoff.audit.chain import verify_all
    except ImportError:
        return None, "Audit verification is not available in this installation yet."
    try:
        return verify_all(session), None
    except Exception as exc:  # shown on the page, never a 500
        session.rollback()
        return None, f"Verification could not run: {type(exc).__name__}"


class OperatorView(SignoffView):
    route_base = "/operator"
    default_view = "dashboard"
    class_permission_name = "Operator"
    #: The FAB role ``Operator`` gets this view's permissions and nothing else
    #: (:func:`signoff.security.sync.sync_permissions`).
    signoff_operator_view = True
    method_permission_name = {
        "dashboard": "read",
        "tenants": "read",
        "audit": "read",
        "set_status": "write",
        "set_plan": "write",
        "retry_deliveries": "write",
    }

    def _nav(self) -> dict[str, Any]:
        return {"operator": True, "user": g.user}

    @expose("/")
    @has_access
    @no_cache
    def dashboard(self) -> str:
        from signoff.workflow.manager import health

        session = db.session
        rows, totals = platform_metrics(session)
        results, problem = audit_status(session)
        slugs = {t.id: t.slug for t, _ in rows}
        billing, billing_totals = billing_overview(session, [t for t, _ in rows])
        broken = [r for r in (results or []) if not r.ok]
        status = health(session)
        return self.render(
            "signoff/operator_dashboard.html",
            nav=self._nav(),
            rows=rows,
            totals=totals,
            audit_results=results,
            audit_problem=problem,
            broken=broken,
            slugs=slugs,
            health=status,
            plans=PLANS,
            billing=billing,
            billing_totals=billing_totals,
        )

    @expose("/tenants/")
    @has_access
    @no_cache
    def tenants(self) -> str:
        rows, totals = platform_metrics(db.session)
        billing, billing_totals = billing_overview(db.session, [t for t, _ in rows])
        return self.render(
            "signoff/operator_tenants.html",
            nav=self._nav(),
            rows=rows,
            totals=totals,
            plans=PLANS,
            billing=billing,
            billing_totals=billing_totals,
        )

    @expose("/audit/")
    @has_access
    @no_cache
    def audit(self) -> str:
        session = db.session
        results, problem = audit_status(session)
        slugs = dict(session.execute(select(Tenant.id, Tenant.slug)).all())
        return self.render(
            "signoff/operator_audit.html",
            nav=self._nav(),
            results=results,
            problem=problem,
            slugs=slugs,
        )

    def _tenant(self, tenant_id: str) -> Tenant:
        tid = as_uuid(tenant_id)
        tenant = db.session.get(Tenant, tid) if tid else None
        if tenant is None:
            abort(404)
        return tenant

    def _record(self, tenant: Tenant, action: str, payload: dict[str, Any]) -> None:
        from signoff.audit.chain import append as audit_append

        with bound_tenant(tenant.id, db.session):
            audit_append(
                db.session,
                actor_id=int(g.user.id),
                on_behalf_of_id=None,
                action=action,
                object_type="tenant",
                object_id=str(tenant.id),
                payload={"operator": g.user.username, **payload},
            )

    @expose("/tenants/<tenant_id>/status", methods=["POST"])
    @has_access
    def set_status(self, tenant_id: str) -> str | Response:
        tenant = self._tenant(tenant_id)
        status = request.form.get("status", "")
        back = "dashboard" if request.form.get("back") == "dashboard" else "tenants"
        if (
            status == "suspended"
            and tenant.status != "suspended"
            and request.form.get("confirm") != "yes"
        ):
            # Suspending locks out a whole organisation: ask first (no JavaScript needed).
            return self.render(
                "signoff/portal_confirm.html",
                heading=_("Suspend %(name)s (%(slug)s)?", name=tenant.name, slug=tenant.slug),
                body=_(
                    "Its members can no longer open its portal or API; pending requests "
                    "wait, nothing is deleted. You can reactivate it at any time."
                ),
                action=url_for("OperatorView.set_status", tenant_id=str(tenant.id)),
                hidden={"status": "suspended", "back": back},
                reason_field=True,
                confirm_label=_("Yes, suspend %(slug)s", slug=tenant.slug),
                cancel=url_for(f"OperatorView.{back}"),
                danger=True,
            )
        if status not in TENANT_STATUSES:
            flash(_("Unknown status."), "danger")
        elif status != tenant.status:
            before = tenant.status
            tenant.status = status
            self._record(
                tenant,
                "tenant.suspended" if status == "suspended" else "tenant.reactivated",
                {
                    "before": before,
                    "after": status,
                    "reason": (request.form.get("reason") or "")[:500],
                },
            )
            db.session.commit()
            flash(
                _(
                    "%(slug)s is now suspended: its members see a suspension notice until "
                    "you reactivate it.",
                    slug=tenant.slug,
                )
                if status == "suspended"
                else _(
                    "%(slug)s is active again: its members can sign in to it.", slug=tenant.slug
                ),
                "success",
            )
        return redirect(url_for(f"OperatorView.{back}"))

    @expose("/tenants/<tenant_id>/retry-deliveries", methods=["POST"])
    @has_access
    def retry_deliveries(self, tenant_id: str) -> Response:
        """Retry a tenant's dead notification deliveries (counts only; audited there)."""
        tenant = self._tenant(tenant_id)
        count = retry_all_dead(db.session, tenant.id)
        self._record(tenant, "notifications.retried", {"deliveries": count})
        db.session.commit()
        flash(
            _(
                "%(num)s dead deliveries of %(slug)s will be attempted again.",
                num=count,
                slug=tenant.slug,
            ),
            "success",
        )
        return redirect(url_for("OperatorView.tenants"))

    @expose("/tenants/<tenant_id>/plan", methods=["POST"])
    @has_access
    def set_plan(self, tenant_id: str) -> Response:
        tenant = self._tenant(tenant_id)
        plan = request.form.get("plan", "")
        reason = (request.form.get("reason") or "").strip()
        if billing_plans.enabled() or reason:
            # With billing on, a plan set here is an override of Stripe's, with a reason.
            try:
                with bound_tenant(tenant.id, db.session):
                    billing_service.override_plan(
                        db.session(),
                        plan_key=None if plan == "stripe" else plan,
                        reason=reason,
                        actor_id=int(g.user.id),
                    )
                db.session.commit()
            except ActionError as exc:
                db.session.rollback()
                flash(translated(exc.message), "danger")
            else:
                flash(
                    _("%(slug)s: plan set (%(reason)s).", slug=tenant.slug, reason=reason),
                    "success",
                )
        elif plan not in PLANS:
            flash(_("Unknown plan."), "danger")
        elif plan != tenant.plan:
            before = tenant.plan
            tenant.plan = plan
            self._record(tenant, "tenant.plan_changed", {"before": before, "after": plan})
            db.session.commit()
            flash(
                _("%(slug)s is now on the %(plan)s plan.", slug=tenant.slug, plan=plan), "success"
            )
        return redirect(url_for("OperatorView.tenants"))


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(OperatorView())
