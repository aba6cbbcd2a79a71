"""Operator console (FAB role ``Operator``; the break-glass ``Admin`` too) under ``/operator/``.

Tenants (status, plan, suspend/reactivate, change plan), the audit chains (each
tenant's last stored verification, one tenant verified on demand), health, and metrics
across tenants.
Operators see the ``tenant`` rows (global) and **counts** only: the counts are
taken by binding each tenant in turn (docs/ARCHITECTURE.md §2), inside one statement
(``signoff.operator_tenant_counts``) for the tenants a page shows, and no tenant row
other than a count ever reaches the page. The Tenants page shows ``PAGE_SIZE`` tenants
a page (search, status filter); the dashboard the ``DASHBOARD_TOP`` busiest, totals over
all tenants and the newest signed audit checkpoints, from one statement over the same
function (the rows grouped in SQL, so only the listed tenants and a few groups reach
Python). The Audit page is paged like the
Tenants page and verifies no chain by itself: it shows each chain's last stored
verification (:mod:`signoff.audit.verification`: the checkpoint job's, or an
operator's), and its button verifies one tenant's chain. A suspension, plan change or
verification by an operator is recorded in that tenant's own audit chain. A tenant's
data is read only through :mod:`signoff.views.support_access`, while that tenant grants
support access.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import abort, current_app, flash, g, redirect, request, url_for
from flask_appbuilder import AppBuilder, expose, has_access
from flask_appbuilder.security.decorators import no_cache
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, func, select, text
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from signoff.audit.chain import append as audit_append
from signoff.audit.checkpoints import audit_keys, full_verification
from signoff.audit.verification import StoredVerification, first_problem, record_full
from signoff.billing import plans as billing_plans
from signoff.billing import service as billing_service
from signoff.db.binding import bound_tenant
from signoff.db.ids import as_uuid
from signoff.errors import N_, ActionError
from signoff.extensions import db
from signoff.languages import translated
from signoff.notifications.dispatch import retry_all_dead
from signoff.tenancy.models import PLANS, TENANT_STATUSES, Tenant
from signoff.views.common import SignoffView

#: Tenants per page of the Tenants page, and tenants the dashboard lists.
PAGE_SIZE = 50
DASHBOARD_TOP = 10
#: Longest accepted search text (name or slug).
MAX_QUERY = 100
#: What a stored verification's problem kind means (signoff.audit.chain.PROBLEMS and
#: signoff.audit.checkpoints.CHECKPOINT_PROBLEMS), for the Audit page.
PROBLEM_WORDS: dict[str, Any] = {
    "edited": _l("an event was changed after it was written"),
    "gap": _l("events are missing (a gap in the sequence)"),
    "fork": _l("an event does not link to the one before it"),
    "bad_first_link": _l("the first event does not link to the chain's start"),
    "bad_signature": _l("a signed checkpoint does not match its signature"),
    "rewritten": _l("the chain was rewritten after a signed checkpoint"),
    "truncated": _l("events after a signed checkpoint were cut off"),
    "missing_row": _l("a signed event is missing"),
    "unknown_key": _l("a checkpoint is signed with a key that is not configured"),
}


@dataclass(frozen=True)
class TenantCounts:
    members: int
    workflows: int
    requests: int
    pending: int
    decisions: int
    dead_deliveries: int = 0


@dataclass(frozen=True)
class TenantFacts:
    """What the console shows of one tenant: counts, billing facts, audit chain head and
    its newest signed checkpoint (the checkpoint job verifies a chain before signing)."""

    counts: TenantCounts
    billing: dict[str, Any]
    audit_head_seq: int | None = None
    checkpoint_seq: int | None = None
    checkpoint_at: datetime | None = None
    #: The last stored verification of the chain (migration 0043), if any.
    verification: StoredVerification | None = None

    @property
    def unsigned(self) -> bool:
        """Events newer than the newest signed checkpoint (or none signed yet)."""
        return bool(self.audit_head_seq) and (self.checkpoint_seq or 0) < (self.audit_head_seq or 0)


NO_FACTS = TenantFacts(
    TenantCounts(0, 0, 0, 0, 0), billing_service.overview_facts(None, None, None, None)
)

# sql/functions/operator_tenant_counts.sql: each tenant bound in turn, in one statement.
_COUNTS = text(
    "SELECT tenant_id, members, workflows, requests, pending, decisions, dead_deliveries, "
    "billing_status, subscription_status, override_plan, subscribed_plan, "
    "audit_head_seq, checkpoint_seq, checkpoint_at, verified_at, verified_ok, verified_from, "
    "verified_to, verified_broken_seq, verified_problem, verified_by "
    "FROM signoff.operator_tenant_counts(CAST(:tenants AS uuid[]))"
)


def tenant_facts(
    session: Session, tenant_ids: Sequence[uuid.UUID] | None
) -> dict[uuid.UUID, TenantFacts]:
    """The facts of ``tenant_ids`` (``None``: of every tenant), in one statement that
    binds each tenant in turn for its own reads (no tenant may be bound)."""
    ids = None if tenant_ids is None else [str(t) for t in tenant_ids]
    return {
        row.tenant_id: TenantFacts(
            TenantCounts(*(int(v or 0) for v in row[1:7])),
            billing_service.overview_facts(*row[7:11]),
            row.audit_head_seq,
            row.checkpoint_seq,
            row.checkpoint_at,
            _stored(row),
        )
        for row in session.execute(_COUNTS, {"tenants": ids})
    }


def _stored(row: Any) -> StoredVerification | None:
    if row.verified_at is None:
        return None
    return StoredVerification(
        verified_at=row.verified_at,
        ok=bool(row.verified_ok),
        from_seq=int(row.verified_from),
        to_seq=row.verified_to,
        broken_seq=row.verified_broken_seq,
        problem=row.verified_problem,
        source=row.verified_by,
    )


def tenant_totals(session: Session) -> dict[str, Any]:
    """Counts of all tenants by status and plan: one aggregate over ``tenant``."""
    totals: dict[str, Any] = {"tenants": 0, "active": 0, "suspended": 0, "by_plan": {}}
    query = select(Tenant.status, Tenant.plan, func.count()).group_by(Tenant.status, Tenant.plan)
    for status, plan, n in session.execute(query):
        totals["tenants"] += n
        totals[status] = totals.get(status, 0) + n
        totals["by_plan"][plan] = totals["by_plan"].get(plan, 0) + n
    return totals


def billing_totals(
    groups: Iterable[tuple[dict[str, Any], int]], by_plan: dict[str, int]
) -> dict[str, Any]:
    """Monthly recurring revenue and paying / past-due tenants over ``groups``: the
    billing facts shared by ``n`` tenants each."""
    groups = list(groups)
    return {
        "enabled": billing_plans.enabled(),
        "mrr": sum(f["mrr"] * n for f, n in groups),
        "currency": billing_plans.all_plans()[0].currency,
        "past_due": sum(n for f, n in groups if f["status"] == "past_due"),
        "subscribed": sum(n for f, n in groups if f["mrr"]),
        "by_plan": by_plan,
    }


@dataclass(frozen=True)
class TenantPage:
    """One page of the Tenants page: its tenants with their counts and billing facts."""

    rows: list[tuple[Tenant, TenantCounts]]
    billing: dict[uuid.UUID, dict[str, Any]]
    matching: int
    page: int
    pages: int
    #: Everything the console shows of each listed tenant (the Audit page's chains).
    facts: dict[uuid.UUID, TenantFacts]


def tenant_page(session: Session, *, q: str, status: str, page: int) -> TenantPage:
    """Tenants whose name or slug contains ``q`` (and of ``status``, if given), by slug,
    ``PAGE_SIZE`` from page ``page`` (0-based); counts for those tenants only."""
    where: list[ColumnElement[bool]] = []
    if q:
        where.append(
            Tenant.name.icontains(q, autoescape=True) | Tenant.slug.icontains(q, autoescape=True)
        )
    if status:
        where.append(Tenant.status == status)
    matching = int(session.scalar(select(func.count()).select_from(Tenant).where(*where)) or 0)
    pages = max(1, -(-matching // PAGE_SIZE))
    page = min(page, pages - 1)
    tenants = list(
        session.scalars(
            select(Tenant)
            .where(*where)
            .order_by(Tenant.slug)
            .offset(page * PAGE_SIZE)
            .limit(PAGE_SIZE)
        )
    )
    facts = tenant_facts(session, [t.id for t in tenants]) if tenants else {}
    rows = [(t, facts.get(t.id, NO_FACTS).counts) for t in tenants]
    billing = {t.id: facts.get(t.id, NO_FACTS).billing for t in tenants}
    return TenantPage(rows, billing, matching, page, pages, facts)


# The dashboard's one statement over the counting function (every tenant, each bound
# in turn inside it): the busiest tenants' rows, then the totals grouped by what the page
# breaks them down by (status, plan, billing words), so the rows that reach Python are
# at most ``top`` plus a few groups, however many tenants there are.
_DASHBOARD = text(
    "WITH c AS MATERIALIZED ("
    "  SELECT c.*, t.slug, t.name, t.status, t.plan, t.created_at"
    "  FROM signoff.operator_tenant_counts(NULL) AS c JOIN tenant AS t ON t.id = c.tenant_id"
    ") "
    "(SELECT 'busy' AS kind, tenant_id, slug, name, status, plan, created_at, members, "
    "   workflows, requests, pending, decisions, dead_deliveries, billing_status, "
    "   subscription_status, override_plan, subscribed_plan, 1::bigint AS tenants, "
    "   0::bigint AS chains, 0::bigint AS unsigned, NULL::timestamptz AS last_signed, "
    "   0::bigint AS broken "
    " FROM c WHERE pending > 0 OR dead_deliveries > 0 "
    " ORDER BY pending DESC, dead_deliveries DESC, slug LIMIT :top) "
    "UNION ALL "
    "SELECT 'group', NULL, NULL, NULL, status, plan, NULL, sum(members), sum(workflows), "
    "  sum(requests), sum(pending), sum(decisions), sum(dead_deliveries), billing_status, "
    "  subscription_status, override_plan, subscribed_plan, count(*), "
    "  count(*) FILTER (WHERE audit_head_seq > 0), "
    "  count(*) FILTER (WHERE audit_head_seq > coalesce(checkpoint_seq, 0)), "
    "  max(checkpoint_at), count(*) FILTER (WHERE verified_ok IS FALSE) "
    "FROM c GROUP BY status, plan, billing_status, subscription_status, override_plan, "
    "  subscribed_plan"
)
_COUNT_NAMES = ("members", "workflows", "requests", "pending", "decisions", "dead_deliveries")


@dataclass(frozen=True)
class TenantRow:
    """The ``tenant`` columns the dashboard's table shows of a listed tenant."""

    id: uuid.UUID
    slug: str
    name: str
    status: str
    plan: str
    created_at: datetime


def platform_metrics(
    session: Session, top: int = DASHBOARD_TOP
) -> tuple[list[tuple[TenantRow, TenantCounts]], dict[str, Any], dict[uuid.UUID, dict[str, Any]]]:
    """The dashboard's figures: the ``top`` tenants by pending requests, then dead
    deliveries; totals over all tenants (``totals["billing"]``, ``totals["audit"]``: the
    newest signed checkpoints, chains broken at their last verification); the billing
    facts of the listed tenants. One statement, whatever the number of tenants."""
    totals: dict[str, Any] = {"tenants": 0, "active": 0, "suspended": 0, "by_plan": {}}
    totals.update(dict.fromkeys(_COUNT_NAMES, 0))
    audit: dict[str, Any] = {"chains": 0, "unsigned": 0, "last_signed": None, "broken": 0}
    groups: list[tuple[dict[str, Any], int]] = []
    rows: list[tuple[TenantRow, TenantCounts]] = []
    billing: dict[uuid.UUID, dict[str, Any]] = {}
    for r in session.execute(_DASHBOARD, {"top": top}):
        facts = billing_service.overview_facts(
            r.billing_status, r.subscription_status, r.override_plan, r.subscribed_plan
        )
        counts = [int(getattr(r, name) or 0) for name in _COUNT_NAMES]
        if r.kind == "busy":
            tenant = TenantRow(r.tenant_id, r.slug, r.name, r.status, r.plan, r.created_at)
            rows.append((tenant, TenantCounts(*counts)))
            billing[tenant.id] = facts
            continue
        n = int(r.tenants)
        totals["tenants"] += n
        totals[r.status] = totals.get(r.status, 0) + n
        totals["by_plan"][r.plan] = totals["by_plan"].get(r.plan, 0) + n
        for name, value in zip(_COUNT_NAMES, counts, strict=True):
            totals[name] += value
        groups.append((facts, n))
        audit["chains"] += int(r.chains)
        audit["unsigned"] += int(r.unsigned)
        audit["broken"] += int(r.broken)
        if r.last_signed is not None and (
            audit["last_signed"] is None or r.last_signed > audit["last_signed"]
        ):
            audit["last_signed"] = r.last_signed
    totals["billing"] = billing_totals(groups, totals["by_plan"])
    totals["audit"] = audit
    return rows, totals, billing


def _page_arg(raw: str | None) -> int:
    """The 1-based ``page`` argument as a 0-based page; 400 naming the field if not a number."""
    if raw in (None, ""):
        return 0
    try:
        number = int(raw)
    except ValueError:
        abort(400, description=N_("page: must be a whole number from 1"))
    if number < 1:
        abort(400, description=N_("page: must be a whole number from 1"))
    return min(number, 1_000_000) - 1


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
        "verify_chain": "write",
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
        """Totals over all tenants, the busiest few tenants and health. The audit chains
        are verified on the Audit page only: verifying every chain here cost a pass over
        every tenant's audit trail on each view."""
        from signoff.workflow.manager import health

        session = db.session
        rows, totals, billing = platform_metrics(session)
        status = health(session)
        return self.render(
            "signoff/operator_dashboard.html",
            nav=self._nav(),
            rows=rows,
            totals=totals,
            top=DASHBOARD_TOP,
            health=status,
            plans=PLANS,
            billing=billing,
            billing_totals=totals["billing"],
            list_args={},
        )

    def _list(self) -> tuple[TenantPage, dict[str, Any]]:
        """The page of tenants the request's ``q``, ``status`` and ``page`` ask for (400
        naming the field when one is bad), and those arguments for links and forms."""
        q = (request.args.get("q") or "").strip()
        if len(q) > MAX_QUERY:
            abort(400, description=N_("q: at most %(count)s characters", count=MAX_QUERY))
        status = request.args.get("status") or ""
        if status and status not in TENANT_STATUSES:
            abort(
                400,
                description=N_(
                    "status: must be one of %(choices)s", choices=", ".join(TENANT_STATUSES)
                ),
            )
        found = tenant_page(
            db.session, q=q, status=status, page=_page_arg(request.args.get("page"))
        )
        list_args = {
            "q": q or None,
            "status": status or None,
            "page": found.page + 1 if found.page else None,
        }
        return found, {k: v for k, v in list_args.items() if v}

    @expose("/tenants/")
    @has_access
    @no_cache
    def tenants(self) -> str:
        found, list_args = self._list()
        return self.render(
            "signoff/operator_tenants.html",
            nav=self._nav(),
            rows=found.rows,
            found=found,
            q=list_args.get("q", ""),
            status=list_args.get("status", ""),
            statuses=TENANT_STATUSES,
            totals=tenant_totals(db.session),
            plans=PLANS,
            billing=found.billing,
            billing_totals={"enabled": billing_plans.enabled()},
            list_args=list_args,
        )

    @expose("/audit/")
    @has_access
    @no_cache
    def audit(self) -> str:
        """A page of tenants (search, status filter, as the Tenants page) with each
        chain's head, newest signed checkpoint and last stored verification: nothing
        is verified here (a chain is verified by its row's button, or by the
        checkpoint job), so the page costs the same statements for any number of
        tenants."""
        found, list_args = self._list()
        return self.render(
            "signoff/operator_audit.html",
            nav=self._nav(),
            found=found,
            q=list_args.get("q", ""),
            status=list_args.get("status", ""),
            statuses=TENANT_STATUSES,
            list_args=list_args,
            problems=PROBLEM_WORDS,
        )

    @expose("/audit/<tenant_id>/verify", methods=["POST"])
    @has_access
    def verify_chain(self, tenant_id: str) -> Response:
        """Verify one tenant's whole chain and its signed checkpoints now, store the
        result for the Audit page, and record the verification in that tenant's chain."""
        tenant = self._tenant(tenant_id)
        session = db.session
        try:
            keys = audit_keys(current_app.config)
        except ValueError as exc:  # a bad key setting: say so, never a 500
            flash(_("Verification could not run: %(reason)s", reason=str(exc)), "danger")
            return self._back("OperatorView.audit")
        with bound_tenant(tenant.id, session):
            found = full_verification(session, tenant.id, keys.all or None)
            record_full(session, found, source="operator")
            broken, problem = first_problem(found)
            self._record(
                tenant,
                "audit.verified",
                {
                    "ok": found.ok,
                    "head_seq": found.chain.head_seq,
                    "broken_seq": broken,
                    "problem": problem,
                    "checkpoints": found.checkpoints is not None,
                },
            )
        session.commit()
        if found.ok:
            flash(_("%(slug)s: the audit chain is intact.", slug=tenant.slug), "success")
        else:
            flash(_("%(slug)s: the audit chain is broken.", slug=tenant.slug), "danger")
        return self._back("OperatorView.audit")

    def _back(self, endpoint: str = "OperatorView.tenants") -> Response:
        """The page a form came from: the dashboard, or the Tenants page (the Audit page
        for its own form) at its search, status filter and page (hidden ``list_*`` fields)."""
        if request.form.get("back") == "dashboard":
            return redirect(url_for("OperatorView.dashboard"))
        args: dict[str, Any] = {}
        q = (request.form.get("list_q") or "").strip()[:MAX_QUERY]
        if q:
            args["q"] = q
        if request.form.get("list_status") in TENANT_STATUSES:
            args["status"] = request.form["list_status"]
        page = request.form.get("list_page") or ""
        if page.isdigit() and int(page) > 1:
            args["page"] = page
        return redirect(url_for(endpoint, **args))

    def _tenant(self, tenant_id: str) -> Tenant:
        tid = as_uuid(tenant_id)
        tenant = db.session.get(Tenant, tid) if tid else None
        if tenant is None:
            abort(404)
        return tenant

    def _record(self, tenant: Tenant, action: str, payload: dict[str, Any]) -> None:
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
                hidden={
                    "status": "suspended",
                    "back": back,
                    **{
                        k: request.form[k]
                        for k in ("list_q", "list_status", "list_page")
                        if request.form.get(k)
                    },
                },
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
        return self._back()

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
        return self._back()

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
        return self._back()


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(OperatorView())
