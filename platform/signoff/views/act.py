"""Decide from an e-mail: ``/act/<token>`` (signed links, :mod:`signoff.notifications.links`).

A GET shows what the link would do and asks to confirm (mail scanners prefetch
links, so a GET never changes state); the POST decides through ``do_approve`` /
``do_reject``, recorded with method ``email``. A step that requires MFA asks for
the approver's authenticator code on the page first. The tenant comes only from the
signed token; every refusal (bad, expired, used link; request withdrawn or changed;
step decided; approver no longer asked) is a page that says what happened, and
nothing is written. POSTs are rate-limited per address.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app, request
from flask_appbuilder import AppBuilder, expose
from flask_appbuilder.security.decorators import no_cache
from flask_appbuilder.security.sqla.models import User
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from werkzeug.wrappers import Response

from signoff.db.binding import bound_tenant
from signoff.errors import ActionError, MfaError
from signoff.extensions import db, limiter
from signoff.languages import translated
from signoff.limiter import client_address
from signoff.notifications import links
from signoff.notifications.format import key_fields
from signoff.security import mfa
from signoff.tenancy.models import Membership, Tenant
from signoff.views.common import SignoffView
from signoff.workflow import actions
from signoff.workflow.engine import step_label
from signoff.workflow.models import ApprovalRequest, ApprovalStep, IdempotencyKey
from signoff.workflow.queries import reason_required


def act_limit() -> str:
    return str(current_app.config.get("SIGNOFF_ACT_RATE_LIMIT") or "30 per 10 minute")


@dataclass
class Problem:
    status: int
    title: str
    message: str


@dataclass
class Target:
    claim: links.ActionClaim
    tenant: Tenant
    request: ApprovalRequest
    step: ApprovalStep
    approver: User


def _used() -> Problem:
    return Problem(
        409, _("This link was already used"), _("Each link works once; your decision is recorded.")
    )


STATUS_WORDS = {
    "approved": _l("approved"),
    "rejected": _l("rejected"),
    "withdrawn": _l("withdrawn by its requester"),
    "changes_requested": _l("sent back for changes"),
    "expired": _l("expired"),
}


def _check(claim: links.ActionClaim) -> Target | Problem:
    """Everything that must hold for the link to act now (read in the bound tenant)."""
    session = db.session
    tenant = session.get(Tenant, claim.tenant_id)
    if tenant is None:
        return Problem(404, _("This link is not valid"), _("The link does not lead anywhere."))
    if tenant.status != "active":
        return Problem(
            403, _("Organisation suspended"), _("%(name)s is suspended.", name=tenant.name)
        )
    used = session.scalar(
        select(IdempotencyKey.key).where(
            IdempotencyKey.user_id == claim.user_id, IdempotencyKey.key == claim.idempotency_key
        )
    )
    if used is not None:
        return _used()
    req = session.get(ApprovalRequest, claim.request_id)
    approver = session.get(User, claim.user_id)
    member = session.scalar(
        select(Membership.id).where(
            Membership.user_id == claim.user_id, Membership.active.is_(True)
        )
    )
    if member is None:
        return Problem(
            403,
            _("Not a member any more"),
            _(
                "This link was sent to a member of %(name)s; that membership has ended.",
                name=tenant.name,
            ),
        )
    step = session.get(ApprovalStep, (tenant.id, claim.request_id, claim.step_index))
    if req is None or step is None or approver is None or not approver.active:
        return Problem(
            404, _("This link is not valid"), _("The request it names is not available.")
        )
    if req.status != "pending":
        word = STATUS_WORDS.get(req.status, req.status)
        return Problem(
            409,
            _("Nothing to decide"),
            _("“%(title)s” was %(status)s.", title=req.title, status=word),
        )
    if req.round != claim.round:
        return Problem(
            409,
            _("The request changed"),
            _(
                "“%(title)s” was changed and submitted again after this e-mail was sent. "
                "Open it in Signoff to decide on what it says now.",
                title=req.title,
            ),
        )
    waiting_on = claim.on_behalf_of if claim.on_behalf_of is not None else claim.user_id
    if step.status != "active" or waiting_on not in (step.open_approvers or []):
        return Problem(
            409,
            _("Already decided"),
            _(
                "The step “%(step)s” of “%(title)s” no longer waits for this decision.",
                step=step.name,
                title=req.title,
            ),
        )
    return Target(claim, tenant, req, step, approver)


def needs_code(target: Target) -> bool:
    """The step requires MFA, or the organisation requires it of every member: a link is
    then one factor only, and the authenticator's code is the second."""
    return bool(target.step.requires_mfa or target.tenant.mfa_required)


def needs_reason(target: Target) -> bool:
    """A rejection asks why, unless the workflow sets ``require_reason: false``."""
    return target.claim.verdict == "reject" and reason_required(db.session, target.request)


class ActionLinkView(SignoffView):
    route_base = "/act"
    default_view = "confirm"

    def _problem(self, problem: Problem, tenant: Tenant | None = None) -> Response:
        page = self.render("signoff/act.html", problem=problem, target=None, tenant=tenant)
        return Response(page, status=problem.status, mimetype="text/html")

    def _page(self, target: Target, *, error: str | None = None, status: int = 200) -> Response:
        base = links.base_url()
        page = self.render(
            "signoff/act.html",
            problem=None,
            target=target,
            tenant=target.tenant,
            accent=target.tenant.accent_color,
            ask_code=needs_code(target),
            ask_reason=needs_reason(target),
            step_name=step_label(target.step.name),
            fields=key_fields(target.request.input_data),
            error=error,
            comment=request.form.get("comment", ""),
            request_url=f"{base}/t/{target.tenant.slug}/requests/{target.request.id}",
        )
        return Response(page, status=status, mimetype="text/html")

    @expose("/<token>", methods=["GET"])
    @no_cache
    def confirm(self, token: str) -> Response:
        try:
            claim = links.read_token(token)
        except links.LinkError as exc:
            return self._problem(_link_problem(exc))
        with bound_tenant(claim.tenant_id, db.session):
            try:
                found = _check(claim)
                if isinstance(found, Problem):
                    return self._problem(found)
                return self._page(found)
            finally:
                db.session.rollback()

    @expose("/<token>", methods=["POST"])
    @limiter.limit(act_limit, key_func=lambda: f"act:{client_address()}", methods=["POST"])
    @no_cache
    def decide(self, token: str) -> Response:
        try:
            claim = links.read_token(token)
        except links.LinkError as exc:
            return self._problem(_link_problem(exc))
        session = db.session
        with bound_tenant(claim.tenant_id, session):
            try:
                return self._decide(claim)
            finally:
                session.rollback()

    def _decide(self, claim: links.ActionClaim) -> Response:
        session = db.session
        found = _check(claim)
        if isinstance(found, Problem):
            return self._problem(found)
        verified_at = None
        comment = (request.form.get("comment") or "").strip()
        if not comment and needs_reason(found):
            # Asked before the code: a refused form never spends an authenticator code.
            return self._page(
                found,
                error=_("Say why you reject: the requester sees your reason."),
                status=422,
            )
        if needs_code(found):
            if not mfa.is_enrolled(session, claim.user_id):
                return self._page(
                    found,
                    error=_(
                        "This decision requires multi-factor authentication, and you have "
                        "no authenticator yet: open the request in Signoff to set one up."
                    ),
                    status=403,
                )
            code = (request.form.get("code") or "").strip()
            if not code:
                return self._page(
                    found, error=_("Enter the code from your authenticator app."), status=422
                )
            try:
                verified_at = mfa.verify_code(session, claim.user_id, code)
            except MfaError as exc:
                session.rollback()
                return self._page(found, error=translated(exc.message), status=exc.status)
        actor = actions.Actor(
            user_id=claim.user_id,
            method="email",
            ip_address=request.remote_addr,
            user_agent=request.headers.get("User-Agent"),
            mfa_verified_at=verified_at,
        )
        decide = actions.do_approve if claim.verdict == "approve" else actions.do_reject
        kwargs: dict[str, Any] = {
            "actor": actor,
            "request_id": claim.request_id,
            "step_index": claim.step_index,
            "comment": comment or None,
            "on_behalf_of": claim.on_behalf_of,
            "idempotency_key": claim.idempotency_key,
            # Compared again under the request's lock: a resubmission that lands between
            # this page's checks and the decision makes the link decide nothing.
            "expected_round": claim.round,
        }
        try:
            result = decide(session, **kwargs)
        except ActionError as exc:
            session.rollback()
            return self._page(found, error=translated(exc.message), status=exc.status)
        if result.replayed:
            return self._problem(_used())
        done = "approved" if claim.verdict == "approve" else "rejected"
        page = self.render(
            "signoff/act.html",
            problem=None,
            target=None,
            done=done,
            tenant=found.tenant,
            title=found.request.title,
            step_name=step_label(found.step.name),
            status=result.status,
            request_url=f"{links.base_url()}/t/{found.tenant.slug}/requests/{found.request.id}",
        )
        return Response(page, status=200, mimetype="text/html")


def _link_problem(exc: links.LinkError) -> Problem:
    if exc.code == "expired":
        return Problem(410, _("This link has expired"), translated(exc.message))
    return Problem(400, _("This link is not valid"), translated(exc.message))


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(ActionLinkView())
