"""The per-tenant approval portal under ``/t/<tenant_slug>/`` (every member).

Inbox (what waits for me, as myself or as a delegate), the request page (input,
chain progress, timeline, decide with a comment, the MFA prompt where a step
needs it), my requests (submit from the workflow's field schema, withdraw,
resubmit after changes), bulk approve, and my delegations.

Data is filtered by row-level security: another tenant's request id reads as
missing and answers 404 exactly like a random id. Inside the tenant,
:func:`~signoff.workflow.queries.get_request_for` limits a request to the people
involved, their delegates and the tenant's admins (404 for everyone else); the
auditors of its workflow read the request page only (every form route answers them 403).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from flask import abort, current_app, flash, g, redirect, request, url_for
from flask_appbuilder import AppBuilder, expose
from flask_appbuilder.security.decorators import no_cache
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from werkzeug.wrappers import Response

from signoff.api.input_guard import upload_body
from signoff.db.binding import current_tenant_id
from signoff.db.ids import as_uuid
from signoff.errors import MfaError
from signoff.extensions import db
from signoff.inputs import date_problem
from signoff.languages import translated, translated_errors
from signoff.limiter import RateLimited
from signoff.security import mfa
from signoff.security.actor import request_actor
from signoff.views.attachments import attach_uploads, check_uploads, chosen_files
from signoff.views.common import (
    SignoffView,
    tenant_nav,
    user_names,
)
from signoff.views.diagram import approver_text, pattern_text
from signoff.views.forms import (
    FormProblems,
    amount_fields,
    field_labels,
    form_input,
    request_widgets,
)
from signoff.views.tenant_base import TenantScoped
from signoff.views.wording import (
    decision_message,
    missing_approvers,
    status_words,
    step_label,
    submit_message,
)
from signoff.workflow import registry
from signoff.workflow.actions import (
    ActionError,
    ActionResult,
    Invalid,
    Refused,
    do_approve,
    do_comment,
    do_delegate,
    do_reject,
    do_request_changes,
    do_resubmit,
    do_revoke_delegation,
    do_submit,
    do_withdraw,
)
from signoff.workflow.definitions import WorkflowDefinition, parse_definition
from signoff.workflow.engine import state_from_dict
from signoff.workflow.models import ApprovalStep, Delegation, WorkflowVersion
from signoff.workflow.queries import (
    delegators_of,
    get_request_for,
    inbox,
    my_requests,
    progress_of_requests,
    request_access,
)
from signoff.workflow.timeline import request_timeline

STATUSES = ("pending", "changes_requested", "approved", "rejected", "withdrawn", "expired")
VERDICTS: dict[str, tuple[Callable[..., ActionResult], Any]] = {
    "approve": (do_approve, _l("Approved")),
    "reject": (do_reject, _l("Rejected")),
    "request_changes": (do_request_changes, _l("Changes requested")),
}


# Decisions are rate limited per user in the action layer (every path shares one
# budget: web, bulk, API, add-on); no second limit here.


# --- helpers ------------------------------------------------------------------------------


def _definition_of(version_id: uuid.UUID, key: str) -> WorkflowDefinition | None:
    version = db.session.get(WorkflowVersion, version_id)
    return parse_definition(key, version.definition) if version else None


def mfa_url(next_url: str) -> str:
    """The MFA step-up page of this tenant, returning to ``next_url``."""
    return f"/t/{g.tenant_slug}/mfa/verify?next={quote(next_url, safe='/')}"


def _parse_when(raw: str | None) -> datetime | None:
    """A ``datetime-local`` input (UTC) or an ISO timestamp."""
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        return None
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    return None if date_problem(value) else value


@dataclass
class StepView:
    index: int
    name: str
    pattern: str
    status: str
    requires_mfa: bool
    need: int
    approvals: int
    due_at: datetime | None
    overdue: bool
    skip_reason: str | None
    people: list[dict[str, Any]] = field(default_factory=list)
    approvers_text: str = ""


def _steps(req: Any, defn: WorkflowDefinition | None, names: dict[int, str]) -> list[StepView]:
    state = state_from_dict(req.state)
    projected = {
        s.step_index: s
        for s in db.session.scalars(select(ApprovalStep).where(ApprovalStep.request_id == req.id))
    }
    now = datetime.now(UTC)
    out = []
    for s in state.steps:
        proj = projected.get(s.index)
        open_ = set(proj.open_approvers) if proj else set()
        decided = {d.principal: d for d in s.decisions}
        people = []
        for uid in s.eligible:
            d = decided.get(uid)
            if d is not None:
                state_text = {"approve": _("approved"), "reject": _("rejected")}.get(
                    d.verdict, _("requested changes")
                )
                if d.on_behalf_of_id is not None:
                    by = names.get(d.actor_id, _("user %(id)s", id=d.actor_id))
                    state_text += " " + _("(by %(name)s)", name=by)
            elif uid in open_:
                state_text = _("pending")
            elif s.status == "active":
                state_text = _("waiting for turn")
            else:
                state_text = "—"
            name = names.get(uid, _("user %(id)s", id=uid))
            people.append({"id": uid, "name": name, "state": state_text})
        spec_steps = list(defn.steps) if defn else []
        approvers = (
            ", ".join(approver_text(a) for a in spec_steps[s.index].approvers)
            if s.index < len(spec_steps)
            else _("added by a rule")
        )
        pattern = pattern_text(spec_steps[s.index]) if s.index < len(spec_steps) else s.pattern
        out.append(
            StepView(
                index=s.index,
                name=s.name,
                pattern=pattern,
                status=s.status,
                requires_mfa=s.requires_mfa,
                need=proj.required_approvals if proj else max(1, s.need),
                approvals=proj.approvals if proj else 0,
                due_at=s.due_at,
                overdue=bool(s.due_at and s.status == "active" and s.due_at < now),
                skip_reason=s.skip_reason,
                people=people,
                approvers_text=approvers,
            )
        )
    return out


def _actionable(req: Any, user_id: int) -> list[dict[str, Any]]:
    """The active steps the user may decide now, as themselves or for a delegator."""
    if req.requester_id == user_id:
        return []
    delegators = delegators_of(db.session, user_id)
    out = []
    for proj in db.session.scalars(
        select(ApprovalStep)
        .where(ApprovalStep.request_id == req.id, ApprovalStep.status == "active")
        .order_by(ApprovalStep.step_index)
    ):
        open_ = set(proj.open_approvers)
        if user_id in open_:
            out.append(
                {
                    "step": proj.step_index,
                    "name": proj.name,
                    "mfa": proj.requires_mfa,
                    "on_behalf_of": None,
                }
            )
            continue
        for delegator, wf in delegators.items():
            if delegator in open_ and wf in (None, req.workflow_key):
                out.append(
                    {
                        "step": proj.step_index,
                        "name": proj.name,
                        "mfa": proj.requires_mfa,
                        "on_behalf_of": delegator,
                    }
                )
                break
    return out


class PortalView(TenantScoped, SignoffView):
    route_base = "/t/<tenant_slug>"
    default_view = "home"

    # --- inbox -----------------------------------------------------------------------

    @expose("/")
    @no_cache
    def home(self) -> str:
        session = db.session
        uid = int(g.user.id)
        q = (request.args.get("q") or "").strip()[:200]
        workflow = (request.args.get("workflow") or "").strip()[:64]
        due = request.args.get("due") or ""
        items = inbox(session, uid, search=q or None, workflow=workflow or None, limit=200)
        if due == "overdue":
            items = [i for i in items if i.overdue]
        elif due == "mfa":
            items = [i for i in items if i.requires_mfa]
        names = user_names(
            session, [i.requester_id for i in items] + [i.on_behalf_of for i in items]
        )
        workflows = registry.effective_workflows(session, current_tenant_id())  # type: ignore[arg-type]
        return self.render(
            "signoff/portal_inbox.html",
            nav=tenant_nav(session),
            items=items,
            names=names,
            q=q,
            workflow=workflow,
            due=due,
            workflows=workflows,
        )

    @expose("/bulk", methods=["POST"])
    def bulk(self) -> str | Response:
        """Approve or reject the selected inbox items, each as its own audited decision.

        The first POST shows what will happen and asks to confirm (no JavaScript needed);
        only the confirming POST (``confirm=yes``) decides."""
        raw = request.form.getlist("item")[:100]
        comment = (request.form.get("comment") or "").strip() or None
        verdict = request.form.get("verdict") or "approve"
        if verdict not in ("approve", "reject"):
            verdict = "approve"
        if not raw:
            flash(_("Select at least one request first."), "warning")
            return redirect(url_for("PortalView.home"))
        if verdict == "reject" and comment is None:
            flash(_("Say why: a reason is required to reject."), "danger")
            return redirect(url_for("PortalView.home"))
        if request.form.get("confirm") != "yes":
            # Titles only from the user's own inbox: a hand-made id shows nothing.
            mine = {
                str(i.request_id): i.title for i in inbox(db.session, int(g.user.id), limit=200)
            }
            return self.render(
                "signoff/portal_bulk_confirm.html",
                nav=tenant_nav(db.session),
                items=[(v, mine.get(v.split(":")[0], "(not in your inbox)")) for v in raw],
                verdict=verdict,
                comment=comment or "",
            )
        action = do_approve if verdict == "approve" else do_reject
        results: list[dict[str, Any]] = []
        for value in raw:
            rid, step, behalf = self._bulk_item(value)
            if rid is None:
                results.append(
                    {"id": value, "ok": False, "code": "not_found", "message": _("Not found")}
                )
                continue
            try:
                result = action(
                    db.session,
                    actor=request_actor(),
                    request_id=rid,
                    step_index=step,
                    comment=comment,
                    on_behalf_of=behalf,
                )
                results.append({"id": str(rid), "ok": True, "status": result.status})
            except ActionError as exc:
                results.append(
                    {
                        "id": str(rid),
                        "ok": False,
                        "code": exc.code,
                        "message": translated(exc.message),
                    }
                )
        # Titles only of the items the user just decided: a refused id may be a
        # request this user is not allowed to see.
        titles = self._titles([str(r["id"]) for r in results if r["ok"]])
        for r in results:
            r["title"] = titles.get(str(r["id"]), "(not shown)")
        return self.render(
            "signoff/portal_bulk.html",
            nav=tenant_nav(db.session),
            results=results,
            verdict=verdict,
            mfa_link=mfa_url(url_for("PortalView.home")),
        )

    @staticmethod
    def _bulk_item(value: str) -> tuple[uuid.UUID | None, int, int | None]:
        """``request:step:on_behalf_of`` of an inbox checkbox; (None, -1, None) if malformed."""
        parts = value.split(":")
        rid = as_uuid(parts[0]) if parts else None
        try:
            step = int(parts[1]) if len(parts) > 1 else -1
            behalf = int(parts[2]) if len(parts) > 2 and parts[2] else None
        except ValueError:
            return None, -1, None
        return rid, step, behalf

    def _titles(self, ids: list[str]) -> dict[str, str]:
        from signoff.workflow.models import ApprovalRequest

        wanted = [u for u in (as_uuid(i) for i in ids) if u]
        if not wanted:
            return {}
        rows = db.session.execute(
            select(ApprovalRequest.id, ApprovalRequest.title).where(ApprovalRequest.id.in_(wanted))
        ).all()
        return {str(i): t for i, t in rows}

    # --- one request -----------------------------------------------------------------

    @expose("/requests/<request_id>")
    @no_cache
    def show(self, request_id: str) -> str:
        # Read-only for the auditors of its workflow: no decision, comment, upload,
        # withdrawal or resubmission forms (each of those routes answers them 403).
        req, may_act = request_access(db.session, user_id=int(g.user.id), request_id=request_id)
        return self._request_page(req, read_only=not may_act)

    def _request_page(self, req: Any, *, read_only: bool = False, **form: Any) -> str:
        """The request page; ``form`` refills the decision form after a refusal
        (``comment``, ``verdict``, ``step``, ``mfa_error``); ``read_only`` for an auditor."""
        session = db.session
        uid = int(g.user.id)
        defn = _definition_of(req.workflow_version_id, req.workflow_key)
        events = request_timeline(session, req)
        state = state_from_dict(req.state)
        people = {req.requester_id}
        for e in events:
            people |= {e.get("actor_id") or 0, e.get("on_behalf_of_id") or 0}
        for s in state.steps:
            people |= set(s.eligible)
        names = user_names(session, people)
        steps = _steps(req, defn, names)
        actions = [] if read_only else _actionable(req, uid)
        needs_mfa = any(a["mfa"] for a in actions)
        enrolled = mfa.is_enrolled(session, uid) if needs_mfa else True
        here = url_for("PortalView.show", request_id=str(req.id))
        return self.render(
            "signoff/portal_request.html",
            progress=progress_of_requests(session, [req])[req.id],
            nav=tenant_nav(session),
            req=req,
            defn=defn,
            labels=field_labels(defn),
            amount_fields=amount_fields(defn),
            steps=steps,
            events=events,
            names=names,
            actions=actions,
            needs_mfa=needs_mfa,
            mfa_ok=mfa.is_fresh(uid) if needs_mfa else True,
            mfa_enrolled=enrolled,
            mfa_link=mfa_url(here),
            mfa_enrol_link=f"/t/{g.tenant_slug}/mfa/enroll?next={quote(here, safe='/')}",
            is_requester=req.requester_id == uid,
            read_only=read_only,
            require_reason=defn.require_reason if defn else True,
            form=form,
        )

    def _refill(self, req: Any, status: int, **form: Any) -> Response:
        return Response(self._request_page(req, **form), mimetype="text/html", status=status)

    @expose("/requests/<request_id>/decide", methods=["POST"])
    def decide(self, request_id: str) -> Response:
        uid = int(g.user.id)
        req = get_request_for(db.session, user_id=uid, request_id=request_id)
        here = url_for("PortalView.show", request_id=str(req.id))
        verdict = request.form.get("verdict", "")
        if verdict not in VERDICTS:
            flash(_("Choose approve, reject or request changes."), "danger")
            return redirect(here)
        action, _done = VERDICTS[verdict]
        comment = request.form.get("comment") or ""
        try:
            step = int(request.form.get("step", ""))
            behalf = request.form.get("on_behalf_of") or None
            on_behalf_of = int(behalf) if behalf else None
        except ValueError:
            flash(_("That step does not exist."), "danger")
            return redirect(here)
        refill = {"comment": comment, "verdict": verdict, "step": step}
        code = (request.form.get("mfa_code") or "").strip()[:32]
        if code and not mfa.is_fresh(uid):
            # MFA in place: the code and the decision arrive together; a valid code
            # counts as the step-up verification and the decision goes on at once.
            try:
                if request.form.get("mfa_kind") == "recovery":
                    mfa.use_recovery_code(db.session, uid, code)
                else:
                    mfa.verify_code(db.session, uid, code)
            except MfaError as exc:
                db.session.rollback()
                return self._refill(req, exc.status, mfa_error=translated(exc.message), **refill)
            except RateLimited as exc:
                db.session.rollback()
                msg = _(
                    "Too many attempts. Try again in %(seconds)s seconds.",
                    seconds=exc.retry_after_seconds,
                )
                return self._refill(req, 429, mfa_error=msg, **refill)
            req = get_request_for(db.session, user_id=uid, request_id=request_id)
        try:
            result = action(
                db.session,
                actor=request_actor(),
                request_id=req.id,
                step_index=step,
                comment=comment or None,
                on_behalf_of=on_behalf_of,
            )
        except Refused as exc:
            db.session.rollback()
            if exc.code == "mfa_required":
                msg = (
                    _("This step needs a code from your authenticator app: enter it below.")
                    if mfa.is_enrolled(db.session, uid)
                    else _("This step needs two-step verification: set it up first.")
                )
                return self._refill(req, 403, mfa_error=msg, **refill)
            return self._refill(req, exc.status, error=translated(exc.message), **refill)
        except Invalid as exc:
            db.session.rollback()
            return self._refill(req, exc.status, error=translated(exc.message), **refill)
        except ActionError as exc:
            flash(translated(exc.message), "danger")
            return redirect(here)
        flash(decision_message(db.session, verdict, result.request_id, step), "success")
        return redirect(here)

    @expose("/requests/<request_id>/comment", methods=["POST"])
    def comment(self, request_id: str) -> Response:
        req = get_request_for(db.session, user_id=int(g.user.id), request_id=request_id)
        here = url_for("PortalView.show", request_id=str(req.id))
        try:
            do_comment(
                db.session,
                actor=request_actor(),
                request_id=req.id,
                body=request.form.get("body") or "",
            )
            flash(_("Comment added."), "success")
        except ActionError as exc:
            flash(translated(exc.message), "danger")
        return redirect(here + "#timeline")

    @expose("/requests/<request_id>/withdraw", methods=["GET", "POST"])
    @no_cache
    def withdraw(self, request_id: str) -> str | Response:
        """Ask first (GET, or a POST without ``confirm=yes``), then withdraw."""
        req = get_request_for(db.session, user_id=int(g.user.id), request_id=request_id)
        here = url_for("PortalView.show", request_id=str(req.id))
        if request.method == "GET" or request.form.get("confirm") != "yes":
            return self.render(
                "signoff/portal_confirm.html",
                nav=tenant_nav(db.session),
                heading=_("Withdraw “%(title)s”?", title=req.title),
                body=_(
                    "The approvers will no longer see it in their inbox and nobody can "
                    "decide on it any more. This cannot be undone: to ask again, submit a new "
                    "request."
                ),
                action=url_for("PortalView.withdraw", request_id=str(req.id)),
                confirm_label=_("Yes, withdraw it"),
                cancel=here,
                danger=True,
            )
        try:
            do_withdraw(db.session, actor=request_actor(), request_id=req.id)
            flash(_("Withdrawn. The approvers no longer see it."), "success")
        except ActionError as exc:
            flash(translated(exc.message), "danger")
        return redirect(here)

    @expose("/requests/<request_id>/resubmit", methods=["GET", "POST"])
    @no_cache
    def resubmit(self, request_id: str) -> Response:
        uid = int(g.user.id)
        req = get_request_for(db.session, user_id=uid, request_id=request_id)
        if req.requester_id != uid:
            abort(404)
        here = url_for("PortalView.show", request_id=str(req.id))
        defn = _definition_of(req.workflow_version_id, req.workflow_key)
        if defn is None:
            abort(404)
        if req.status != "changes_requested":
            flash(_("Only a request sent back for changes can be resubmitted."), "warning")
            return redirect(here)
        values: dict[str, Any] = dict(req.input_data or {})
        errors: dict[str, list[str]] = {}
        message = None
        status = 200
        files = [(f.filename, f.read()) for f in chosen_files()]
        if request.method == "POST" and (problems := check_uploads(files)):
            # A refused file resubmits nothing: the form comes back as it was typed.
            try:
                values = form_input(defn, request.form)
            except FormProblems as exc:
                values = exc.values
            errors, status = {"files": problems}, 422
        elif request.method == "POST":
            try:
                values = form_input(defn, request.form)
                do_resubmit(db.session, actor=request_actor(), request_id=req.id, input_data=values)
                flash(_("Resubmitted: the approval chain starts again."), "success")
                if files and (problems := attach_uploads(req.id, files)):
                    flash(_("Not attached:") + " " + " ".join(problems), "danger")
                return redirect(here)
            except FormProblems as exc:
                values, errors = exc.values, exc.errors or {}
                status = 422
            except Invalid as exc:
                errors = translated_errors(exc.errors) or {}
                message = translated(exc.message) if not errors else None
                status = 422
            except ActionError as exc:
                message = translated(exc.message)
                status = 422
            req = get_request_for(db.session, user_id=uid, request_id=request_id)
        page = self.render(
            "signoff/portal_form.html",
            nav=tenant_nav(db.session),
            defn=defn,
            widgets=request_widgets(defn, values, errors),
            title_value=req.title,
            errors=errors,
            message=message,
            resubmit=req,
            freeform="\n".join(f"{k}: {v}" for k, v in values.items()) if not defn.fields else "",
        )
        return Response(page, mimetype="text/html", status=status)

    # --- my requests -----------------------------------------------------------------

    @expose("/mine")
    @no_cache
    def mine(self) -> str:
        status = request.args.get("status") or ""
        if status not in STATUSES:
            status = ""
        rows = my_requests(db.session, int(g.user.id), status=status or None, limit=200)
        return self.render(
            "signoff/portal_mine.html",
            nav=tenant_nav(db.session),
            rows=rows,
            progress=progress_of_requests(db.session, rows),
            status=status,
            statuses=STATUSES,
        )

    @expose("/new")
    @no_cache
    def new(self) -> str:
        workflows = registry.effective_workflows(db.session, current_tenant_id())  # type: ignore[arg-type]
        return self.render(
            "signoff/portal_new.html", nav=tenant_nav(db.session), workflows=workflows
        )

    @expose("/new/<key>", methods=["GET", "POST"])
    @no_cache
    @upload_body
    def submit(self, key: str) -> str | Response:
        effective = registry.get_effective(db.session, current_tenant_id(), key)  # type: ignore[arg-type]
        if effective is None:
            abort(404)
        defn = effective.definition
        values: dict[str, Any] = {}
        errors: dict[str, list[str]] = {}
        message = None
        invite = False
        title = ""
        status = 200
        files = [(f.filename, f.read()) for f in chosen_files()]
        if request.method == "POST" and (problems := check_uploads(files)):
            try:
                values = form_input(defn, request.form)
            except FormProblems as exc:
                values = exc.values
            title = (request.form.get("title") or "").strip()
            errors = {"files": problems}
            status = 422
        elif request.method == "POST":
            title = (request.form.get("title") or "").strip()
            try:
                values = form_input(defn, request.form)
                result = do_submit(
                    db.session,
                    actor=request_actor(),
                    workflow_key=key,
                    input_data=values,
                    title=title or None,
                )
                flash(
                    submit_message(db.session, result.request_id, result.status),
                    "success",
                )
                if problems := attach_uploads(result.request_id, files):
                    flash(_("Not attached:") + " " + " ".join(problems), "danger")
                return redirect(url_for("PortalView.show", request_id=str(result.request_id)))
            except FormProblems as exc:
                values, errors = exc.values, exc.errors or {}
                status = 422
            except Invalid as exc:
                errors = translated_errors(exc.errors) or (
                    {exc.field: [translated(exc.message)]} if exc.field else {}
                )
                message = None if exc.errors else translated(exc.message)
                status = 422
            except ActionError as exc:
                message = translated(exc.message)
                status = 422
                missing = missing_approvers(
                    defn, exc, is_admin=bool(tenant_nav(db.session)["is_admin"])
                )
                if missing is not None:
                    message, invite = missing
        page = self.render(
            "signoff/portal_form.html",
            nav=tenant_nav(db.session),
            defn=defn,
            key=key,
            widgets=request_widgets(defn, values, errors),
            title_value=title,
            errors=errors,
            message=message,
            resubmit=None,
            freeform=request.form.get("freeform", "") if request.method == "POST" else "",
            invite_link=url_for("TenantAdminView.members") + "#invite"
            if invite and tenant_nav(db.session)["is_admin"]
            else None,
        )
        return page if status == 200 else Response(page, mimetype="text/html", status=status)

    # --- delegations -----------------------------------------------------------------

    @expose("/delegations", methods=["GET", "POST"])
    @no_cache
    def delegations(self) -> str | Response:
        from signoff.workflow.approvers import Directory

        session = db.session
        uid = int(g.user.id)
        error = None
        if request.method == "POST":
            try:
                delegate = int(request.form.get("delegate") or "0")
            except ValueError:
                delegate = 0
            starts = _parse_when(request.form.get("starts_at")) or datetime.now(UTC)
            ends = _parse_when(request.form.get("ends_at"))
            if ends is None:
                error = _("Give an end date and time.")
            else:
                try:
                    do_delegate(
                        session,
                        actor=request_actor(),
                        delegate_id=delegate,
                        starts_at=starts,
                        ends_at=ends,
                        workflow_key=request.form.get("workflow") or None,
                        reason=request.form.get("reason") or None,
                    )
                    flash(_("Delegation saved."), "success")
                    return redirect(url_for("PortalView.delegations"))
                except ActionError as exc:
                    error = translated(exc.message)
        directory = Directory.load(session)
        rows = list(
            session.scalars(
                select(Delegation)
                .where((Delegation.delegator_id == uid) | (Delegation.delegate_id == uid))
                .order_by(Delegation.starts_at.desc())
                .limit(200)
            )
        )
        names = user_names(
            session,
            [
                *directory.name_by_user,
                *(r.delegator_id for r in rows),
                *(r.delegate_id for r in rows),
            ],
        )
        members = sorted(
            ((u, names.get(u, str(u))) for u in directory.name_by_user if u != uid),
            key=lambda p: p[1].lower(),
        )
        workflows = registry.effective_workflows(session, current_tenant_id())  # type: ignore[arg-type]
        return self.render(
            "signoff/portal_delegations.html",
            nav=tenant_nav(session),
            rows=rows,
            names=names,
            members=members,
            workflows=workflows,
            error=error,
            now=datetime.now(UTC),
            uid=uid,
        )

    @expose("/delegations/<delegation_id>/revoke", methods=["POST"])
    def revoke_delegation(self, delegation_id: str) -> Response:
        try:
            do_revoke_delegation(db.session, actor=request_actor(), delegation_id=delegation_id)
            flash(_("Delegation revoked."), "success")
        except ActionError as exc:
            if exc.status == 404:
                abort(404)
            flash(translated(exc.message), "danger")
        return redirect(url_for("PortalView.delegations"))


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(PortalView())
    current_app.jinja_env.filters["step_label"] = step_label
    current_app.jinja_env.filters["status_words"] = status_words
