"""Tenant admin (the tenant's ``Admin`` role) under ``/t/<tenant_slug>/admin/``.

Overview and usage counts, members (invite by signed link, roles, manager,
deactivate), branding, every delegation, the audit trail's verification and its
compliance report. Workflows and rules live in :mod:`signoff.views.admin_workflows`,
the tenant's roles in :mod:`signoff.views.admin_roles`. Every change writes an audit event
in the same transaction. Ids in URLs are read under row-level security, so another
tenant's member or invitation id is a 404 like a random one.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import abort, current_app, flash, g, make_response, redirect, request, url_for
from flask_appbuilder import AppBuilder, expose
from flask_appbuilder.security.decorators import no_cache
from flask_appbuilder.security.sqla.models import User
from flask_babel import gettext as _
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from signoff.audit.chain import append as audit_append
from signoff.db.ids import as_uuid
from signoff.extensions import db
from signoff.inputs import date_problem
from signoff.languages import translated
from signoff.notifications.email import mail_configured, send_email
from signoff.roles import ADMIN_ROLE
from signoff.security import mfa
from signoff.security.sessions import revoke_user_sessions
from signoff.tenancy.access import current_tenant, require_tenant
from signoff.tenancy.accounts import normalize_email
from signoff.tenancy.admins import (
    active_admin_ids,
    lock_member_changes,
)
from signoff.tenancy.invites import Invitation, InviteError, create_invitation
from signoff.tenancy.models import Membership, MembershipRole, TenantRole
from signoff.views import branding as branding_checks
from signoff.views.common import SignoffView, tenant_nav, user_names
from signoff.views.portal import mfa_url
from signoff.views.tenant_base import TenantScoped
from signoff.workflow.models import (
    ApprovalRequest,
    ApprovalRule,
    Delegation,
    StepDecision,
    Workflow,
)
from signoff.workflow.setup import setup_checklist


def _audit(session: Session, action: str, object_type: str, object_id: str, **payload: Any) -> None:
    audit_append(
        session,
        actor_id=int(g.user.id),
        on_behalf_of_id=None,
        action=action,
        object_type=object_type,
        object_id=object_id,
        payload=payload,
    )


def usage_counts(session: Session) -> dict[str, Any]:
    """Counts of the bound tenant's data (read under RLS)."""

    def count(model: Any, *where: Any) -> int:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    month = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    by_status = dict(
        session.execute(
            select(ApprovalRequest.status, func.count()).group_by(ApprovalRequest.status)
        ).all()
    )
    now = datetime.now(UTC)
    return {
        "members": count(Membership, Membership.active.is_(True)),
        "inactive_members": count(Membership, Membership.active.is_(False)),
        "pending_invitations": count(
            Invitation,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
            Invitation.expires_at > now,
        ),
        "workflows": count(Workflow, Workflow.active.is_(True)),
        "rules": count(ApprovalRule, ApprovalRule.active.is_(True)),
        "requests": sum(by_status.values()),
        "requests_by_status": by_status,
        "requests_this_month": count(ApprovalRequest, ApprovalRequest.submitted_at >= month),
        "decisions": count(StepDecision),
        "active_delegations": count(
            Delegation,
            Delegation.revoked_at.is_(None),
            Delegation.starts_at <= now,
            Delegation.ends_at > now,
        ),
    }


def _members(session: Session) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .order_by(Membership.active.desc(), func.lower(User.first_name), User.username)
    ).all()
    by_id = {m.id: u for m, u in rows}
    out = []
    for m, u in rows:
        manager = by_id.get(m.manager_id) if m.manager_id else None
        out.append(
            {
                "id": m.id,
                "user_id": u.id,
                "name": " ".join(p for p in (u.first_name, u.last_name) if p and p != "-"),
                "username": u.username,
                "email": u.email,
                "active": m.active,
                "roles": m.role_names,
                "manager": (
                    " ".join(p for p in (manager.first_name, manager.last_name) if p != "-")
                    if manager
                    else None
                ),
                "joined": m.created_at,
            }
        )
    return out


class TenantAdminView(TenantScoped, SignoffView):
    route_base = "/t/<tenant_slug>/admin"
    default_view = "overview"
    tenant_roles = (ADMIN_ROLE,)

    @expose("/")
    @no_cache
    def overview(self) -> str:
        session = db.session
        tenant = current_tenant(session)
        return self.render(
            "signoff/admin_overview.html",
            nav=tenant_nav(session),
            usage=usage_counts(session),
            tenant=tenant,
            checklist=setup_checklist(session, tenant),
        )

    # --- members -----------------------------------------------------------------------

    @expose("/members/")
    @no_cache
    def members(self) -> str:
        return self._members_page({}, request.args)

    def _members_page(self, errors: dict[str, list[str]], form: Any) -> str:
        session = db.session
        invitations = list(
            session.scalars(
                select(Invitation)
                .where(Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None))
                .order_by(Invitation.created_at.desc())
                .limit(200)
            )
        )
        roles = sorted(session.scalars(select(TenantRole.name)))
        return self.render(
            "signoff/admin_members.html",
            nav=tenant_nav(session),
            members=_members(session),
            invitations=invitations,
            roles=roles,
            form=form,
            chosen=set(form.getlist("roles")) if hasattr(form, "getlist") else set(),
            errors=errors,
            mail=mail_configured(),
        )

    @expose("/members/invite", methods=["POST"])
    @no_cache
    def invite(self) -> str | Response:
        session = db.session
        email, problem = normalize_email(request.form.get("email"))
        roles = request.form.getlist("roles")
        errors: dict[str, list[str]] = {}
        if problem or email is None:
            errors.setdefault("email", []).append(
                _("Email %(problem)s", problem=translated(problem or ""))
            )
        known = set(session.scalars(select(TenantRole.name)))
        if not roles:
            errors.setdefault("roles", []).append("Choose at least one role.")
        elif unknown := sorted(set(roles) - known):
            errors.setdefault("roles", []).append(f"Unknown role(s): {', '.join(unknown)}")
        row = token = None
        if not errors and email is not None:
            try:
                row, token = create_invitation(
                    session, invited_by=int(g.user.id), email=email, roles=roles
                )
            except InviteError as exc:
                errors.setdefault(exc.field or "email", []).append(translated(exc.message))
        if errors or row is None or token is None or email is None:
            session.rollback()
            page = self._members_page(errors, request.form)
            return Response(page, status=422, mimetype="text/html")
        return self._invited(row, token, resent=False)

    def _invited(self, row: Invitation, token: str, *, resent: bool) -> str:
        """Audit the new invitation, commit, then e-mail the link or show it once."""
        session = db.session
        _audit(
            session,
            "member.invited",
            "invitation",
            str(row.id),
            email=row.email,
            roles=list(row.roles),
            expires_at=row.expires_at.isoformat(),
            resent=resent,
        )
        session.commit()
        link = url_for("InviteView.accept", token=token, _external=True)
        sent = False
        mail = mail_configured()
        if mail:
            # With mail set up the link goes only to the invited address, so nobody
            # but its owner can accept (and set the password of) that account.
            try:
                send_email(
                    row.email,
                    f"You are invited to {current_tenant(session).name} on Signoff",
                    f"Accept the invitation (valid until {row.expires_at:%Y-%m-%d %H:%M} UTC, "
                    f"works once):\n\n{link}\n",
                )
                sent = True
            except Exception as exc:
                flash(
                    _(
                        "The invitation e-mail could not be sent (%(error)s): "
                        "share this link instead.",
                        error=type(exc).__name__,
                    ),
                    "danger",
                )
        return self.render(
            "signoff/admin_invite_created.html",
            nav=tenant_nav(session),
            email=row.email,
            roles=list(row.roles),
            link=None if sent else link,
            sent=sent,
            mail=mail,
            resent=resent,
            expires_at=row.expires_at,
        )

    @expose("/invitations/<invitation_id>/resend", methods=["POST"])
    @no_cache
    def resend_invitation(self, invitation_id: str) -> str | Response:
        """A new link for a pending invitation (the old one stops working)."""
        session = db.session
        iid = as_uuid(invitation_id)
        old = session.get(Invitation, iid) if iid else None
        if old is None or old.accepted_at is not None or old.revoked_at is not None:
            abort(404)
        try:
            row, token = create_invitation(
                session, invited_by=int(g.user.id), email=old.email, roles=list(old.roles)
            )
        except InviteError as exc:
            session.rollback()
            flash(translated(exc.message), "danger")
            return redirect(url_for("TenantAdminView.members"))
        return self._invited(row, token, resent=True)

    @expose("/invitations/<invitation_id>/revoke", methods=["POST"])
    def revoke_invitation(self, invitation_id: str) -> Response:
        session = db.session
        iid = as_uuid(invitation_id)
        row = session.get(Invitation, iid) if iid else None
        if row is None:
            abort(404)
        if row.accepted_at is None and row.revoked_at is None:
            row.revoked_at = datetime.now(UTC)
            _audit(session, "invitation.revoked", "invitation", str(row.id), email=row.email)
            session.commit()
            flash(_("Invitation for %(email)s revoked.", email=row.email), "success")
        return redirect(url_for("TenantAdminView.members"))

    @expose("/members/<member_id>", methods=["GET", "POST"])
    @no_cache
    def member(self, member_id: str) -> str | Response:
        session = db.session
        mid = as_uuid(member_id)
        membership = session.get(Membership, mid) if mid else None
        if membership is None:
            abort(404)
        user = session.get(User, membership.user_id)
        roles = {r.name: r for r in session.scalars(select(TenantRole).order_by(TenantRole.name))}
        others = [m for m in _members(session) if m["id"] != membership.id and m["active"]]
        error = None
        if request.method == "POST":
            error = self._save_member(session, membership, roles)
            if error is None:
                flash(_("Member saved."), "success")
                return redirect(url_for("TenantAdminView.members"))
            session.rollback()
            membership = session.get(Membership, mid)
            assert membership is not None
        return self.render(
            "signoff/admin_member.html",
            nav=tenant_nav(session),
            membership=membership,
            person=user,
            roles=sorted(roles),
            others=others,
            error=error,
            is_self=membership.user_id == int(g.user.id),
            mfa_enrolled=mfa.is_enrolled(session, membership.user_id),
        )

    @expose("/members/<member_id>/mfa-reset", methods=["POST"])
    @no_cache
    def reset_mfa(self, member_id: str) -> Response:
        """Reset a member's authenticator (lost phone); the admin needs a fresh MFA check."""
        session = db.session
        mid = as_uuid(member_id)
        membership = session.get(Membership, mid) if mid else None
        if membership is None:
            abort(404)
        back = url_for("TenantAdminView.member", member_id=membership.id)
        actor_id = int(g.user.id)
        if not mfa.is_fresh(actor_id):
            flash(_("Resetting an authenticator needs a fresh multi-factor check."), "info")
            return redirect(mfa_url(back))
        try:
            existed = mfa.admin_reset(session, actor_id=actor_id, user_id=membership.user_id)
        except mfa.MfaError as exc:
            session.rollback()
            flash(translated(exc.message), "danger")
            return redirect(back)
        session.commit()
        flash(
            _("Authenticator reset: the member enrols again at their next multi-factor check.")
            if existed
            else _("This member had no authenticator; nothing to reset."),
            "success",
        )
        return redirect(back)

    def _save_member(
        self, session: Session, membership: Membership, roles: dict[str, TenantRole]
    ) -> str | None:
        wanted = {r for r in request.form.getlist("roles") if r in roles}
        active = request.form.get("active") == "on"
        is_self = membership.user_id == int(g.user.id)
        if is_self and (not active or ADMIN_ROLE not in wanted):
            return "You cannot remove your own Admin role or deactivate yourself."
        lock_member_changes(session, require_tenant())
        admins = active_admin_ids(session)
        if membership.id in admins and (not active or ADMIN_ROLE not in wanted) and len(admins) < 2:
            return "The organisation needs at least one active Admin."
        manager_raw = request.form.get("manager") or ""
        manager_id = as_uuid(manager_raw) if manager_raw else None
        if manager_raw and (
            manager_id is None
            or manager_id == membership.id
            or session.get(Membership, manager_id) is None
        ):
            return "Choose a manager among the active members."
        before = set(membership.role_names)
        session.execute(delete(MembershipRole).where(MembershipRole.membership_id == membership.id))
        for name in sorted(wanted):
            session.add(MembershipRole(membership_id=membership.id, role_id=roles[name].id))
        was_active = membership.active
        membership.active = active
        membership.manager_id = manager_id
        session.flush()
        if was_active and not active:
            # Tokens issued for this tenant end with the deactivation.
            revoke_user_sessions(
                session, membership.user_id, reason="deactivated", tenant_id=require_tenant()
            )
        _audit(
            session,
            "member.updated",
            "membership",
            str(membership.id),
            user_id=membership.user_id,
            roles_before=sorted(before),
            roles=sorted(wanted),
            active_before=was_active,
            active=active,
            manager=str(manager_id) if manager_id else None,
        )
        session.commit()
        return None

    # --- branding ----------------------------------------------------------------------

    @expose("/branding", methods=["GET", "POST"])
    @no_cache
    def branding(self) -> str | Response:
        session = db.session
        tenant = current_tenant(session)
        errors: dict[str, str] = {}
        status = 200
        if request.method == "POST":
            raw_name = request.form.get("name")
            color = (request.form.get("accent_color") or "").strip().lower()
            name_error = branding_checks.name_problem(raw_name, limit=120)
            color_error = branding_checks.accent_problem(color)
            if name_error:
                errors["name"] = name_error
            if color_error:
                errors["accent_color"] = color_error
            if not errors:
                before = {"name": tenant.name, "accent_color": tenant.accent_color}
                tenant.name = " ".join((raw_name or "").split())
                tenant.accent_color = color
                _audit(
                    session,
                    "tenant.branding_changed",
                    "tenant",
                    str(tenant.id),
                    before=before,
                    after={"name": tenant.name, "accent_color": color},
                )
                session.commit()
                flash(_("Branding saved."), "success")
                return redirect(url_for("TenantAdminView.branding"))
            session.rollback()
            tenant = current_tenant(session)
            status = 422
        page = self.render(
            "signoff/admin_branding.html",
            nav=tenant_nav(session),
            tenant=tenant,
            errors=errors,
            form=request.form,
            min_contrast=branding_checks.MIN_CONTRAST,
        )
        return page if status == 200 else Response(page, status=status, mimetype="text/html")

    # --- delegations (all of the tenant) -----------------------------------------------

    @expose("/delegations/")
    @no_cache
    def delegations(self) -> str:
        session = db.session
        rows = list(
            session.scalars(select(Delegation).order_by(Delegation.starts_at.desc()).limit(500))
        )
        names = user_names(session, [r.delegator_id for r in rows] + [r.delegate_id for r in rows])
        return self.render(
            "signoff/admin_delegations.html",
            nav=tenant_nav(session),
            rows=rows,
            names=names,
            now=datetime.now(UTC),
        )

    # --- audit -------------------------------------------------------------------------

    @expose("/audit/")
    @no_cache
    def audit(self) -> str:
        session = db.session
        result, problem = _verify(session)
        today = date.today()
        return self.render(
            "signoff/admin_audit.html",
            nav=tenant_nav(session),
            result=result,
            problem=problem,
            start=(today - timedelta(days=30)).isoformat(),
            end=today.isoformat(),
        )

    @expose("/audit/report")
    @no_cache
    def audit_report(self) -> Response:
        try:
            from signoff.audit.report import generate_compliance_report
        except ImportError:
            flash(_("Compliance reports are not available in this installation."), "warning")
            return redirect(url_for("TenantAdminView.audit"))
        fmt = request.args.get("format", "csv")
        try:
            start = date.fromisoformat(request.args.get("start", ""))
            end = date.fromisoformat(request.args.get("end", ""))
        except ValueError:
            flash(_("Give a start and an end date."), "danger")
            return redirect(url_for("TenantAdminView.audit"))
        if date_problem(start) or date_problem(end):
            flash(
                _(
                    "Dates %(problem)s.",
                    problem=translated(date_problem(start) or date_problem(end) or ""),
                ),
                "danger",
            )
            return redirect(url_for("TenantAdminView.audit"))
        if fmt not in ("csv", "pdf") or end < start:
            flash(_("Choose CSV or PDF and an end date after the start."), "danger")
            return redirect(url_for("TenantAdminView.audit"))
        tenant = current_tenant(db.session)
        body = generate_compliance_report(
            db.session,
            tenant.id,
            start,
            end,
            "pdf" if fmt == "pdf" else "csv",
            keys=_audit_keys(),
        )
        resp = make_response(body)
        resp.headers["Content-Type"] = (
            "text/csv; charset=utf-8" if fmt == "csv" else ("application/pdf")
        )
        resp.headers["Content-Disposition"] = (
            f'attachment; filename="audit-{tenant.slug}-{start}-{end}.{fmt}"'
        )
        return resp


def _audit_keys() -> dict[str, bytes] | None:
    try:
        from signoff.audit.checkpoints import audit_keys
    except ImportError:
        return None
    keys = audit_keys(current_app.config)
    return dict(keys.all) or None


def _verify(session: Session) -> tuple[Any, str | None]:
    """The tenant's full verification (chain and signed checkpoints), or why not."""
    try:
        from signoff.audit.checkpoints import full_verification
    except ImportError:
        return None, "Audit verification is not available in this installation yet."
    try:
        return full_verification(session, require_tenant(), _audit_keys()), None
    except Exception as exc:  # shown to the admin, never a 500
        session.rollback()
        return None, f"Verification could not run: {type(exc).__name__}"


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(TenantAdminView())
