"""``/api/v1/requests``: submit, list, read, withdraw, resubmit, request changes, comment.

Writes go through the workflow actions (one transaction each, audited); reads use
:mod:`signoff.workflow.queries` under row-level security. A request is visible to
its requester, to everyone who may or did decide on one of its steps (and their
active delegates) and to the tenant's admins; the auditors of its workflow read it
(detail, timeline) and every write answers them 403; to anyone else, as to another
tenant, it does not exist (404).
"""

from __future__ import annotations

from typing import Any

from flask import g, url_for
from flask_appbuilder.api import expose
from sqlalchemy import select
from werkzeug.wrappers import Response

from signoff.api.base import (
    UUID_PATH,
    TenantBaseApi,
    endpoint,
    idempotency_key,
    json_body,
    link,
    openapi,
    query_args,
    with_replay_header,
)
from signoff.api.common_schemas import ActionResultSchema, ErrorSchema
from signoff.api.requests_schemas import (
    CommentSchema,
    FieldChangeSchema,
    RequestChangesSchema,
    RequestDetailSchema,
    RequestListQuerySchema,
    RequestListSchema,
    RequestSummarySchema,
    ResubmitSchema,
    StepSchema,
    SubmitSchema,
    TimelineEventSchema,
    TimelineSchema,
)
from signoff.db.ids import parse_id
from signoff.extensions import db
from signoff.roles import ADMIN_ROLE
from signoff.security.actor import request_actor
from signoff.tenancy.access import is_tenant_admin
from signoff.workflow import actions, queries
from signoff.workflow.actions import ActionResult
from signoff.workflow.models import ApprovalRequest, ApprovalStep
from signoff.workflow.queries import get_request_for
from signoff.workflow.timeline import request_timeline

# --- visibility -----------------------------------------------------------------------------


def current_user_id() -> int:
    return int(g.user.id)


#: Dumping holds no per-call state: one instance serves every response.
_ACTION_RESULT = ActionResultSchema()
#: Loading holds none either (messages are translated when an error is answered).
_REQUEST_CHANGES_BODY = RequestChangesSchema()


def action_response(result: ActionResult, status: int = 200) -> Response:
    body = _ACTION_RESULT.dump({**result.to_dict(), "replayed": result.replayed})
    resp = TenantBaseApi.response(status, **body)
    return with_replay_header(resp, result.replayed)


# --- the resource ---------------------------------------------------------------------------

_ID = [("id", UUID_PATH)]
_RID = "$response.body#/request_id"
#: Where a submission leads (OpenAPI links: clients and stateful testers follow them).
SUBMITTED_LINKS = {
    "GetRequest": link("RequestsApi.get", id=_RID),
    "GetTimeline": link("RequestsApi.timeline", id=_RID),
    "GetHistory": link("ApprovalWorkflowApi.get_history", id=_RID),
    "ApproveFirstStep": link("ApprovalWorkflowApi.approve", id=_RID, step=0),
    "Reject": link("ApprovalWorkflowApi.reject", id=_RID),
    "RequestChanges": link("RequestsApi.request_changes", id=_RID),
    "Comment": link("RequestsApi.comment", id=_RID),
    "Withdraw": link("RequestsApi.withdraw", id=_RID),
    "Resubmit": link("RequestsApi.resubmit", id=_RID),
}


def decide(
    action: Any, request_id: str, data: dict[str, Any], *, step: int | None = None
) -> Response:
    """One decision through the action layer, for every decision endpoint.

    ``step`` comes from the URL when the endpoint names it, else from the body (the
    actor's active step when absent). The request is read once, under its lock in the
    action's transaction, where its visibility to the caller is checked too
    (``seen_by_actor``): 404 when the caller may not see it, 409 ``not_pending`` when no
    step is named and it is no longer pending.
    """
    result = action(
        db.session,
        actor=request_actor(method="api"),
        request_id=parse_id(request_id),
        step_index=step if step is not None else data.get("step"),
        comment=data.get("comment"),
        on_behalf_of=data.get("on_behalf_of"),
        idempotency_key=idempotency_key(),
        seen_by_actor=True,
    )
    return action_response(result)


class RequestsApi(TenantBaseApi):
    resource_name = "requests"
    openapi_spec_tag = "Requests"
    openapi_spec_component_schemas = (
        ErrorSchema,
        ActionResultSchema,
        SubmitSchema,
        ResubmitSchema,
        RequestChangesSchema,
        CommentSchema,
        StepSchema,
        RequestSummarySchema,
        RequestDetailSchema,
        RequestListSchema,
        FieldChangeSchema,
        TimelineEventSchema,
        TimelineSchema,
    )

    @expose("/", methods=("GET",))
    @endpoint("read")
    @openapi(
        "List requests",
        description=(
            "Requests you submitted or may decide, or decided (tenant admins: all), newest "
            "first. Filters: status, workflow, requester_id, mine, search (title)."
        ),
        query=RequestListQuerySchema,
        ok={200: RequestListSchema},
        errors=(401, 403, 422),
    )
    def get_list(self) -> Response:
        args = query_args(RequestListQuerySchema())
        session = db.session
        uid = current_user_id()
        requester = uid if args.get("mine") else args.get("requester_id")
        rows, total = queries.list_requests(
            session,
            status=args.get("status"),
            workflow=args.get("workflow"),
            requester_id=requester,
            involving=None if is_tenant_admin(session) else uid,
            search=args.get("search"),
            limit=args["page_size"],
            offset=args["page"] * args["page_size"],
        )
        progress = queries.progress_of_requests(session, rows)
        items = [_with_progress(r, progress[r.id]) for r in rows]
        body = RequestListSchema().dump(
            {"count": total, "page": args["page"], "page_size": args["page_size"], "result": items}
        )
        return self.response(200, **body)

    @expose("/", methods=("POST",))
    @endpoint("write")
    @openapi(
        "Submit a request",
        description=(
            "Start a request on the workflow's current version. `input_data` is validated "
            "against the workflow's field schema (422 with every problem by path)."
        ),
        body=SubmitSchema,
        body_required=True,
        ok={201: ("Submitted", ActionResultSchema)},
        errors=(400, 401, 402, 403, 404, 409, 415, 422),
        idempotent=True,
        links={201: SUBMITTED_LINKS},
    )
    def post(self) -> Response:
        data = json_body(SubmitSchema(), required=True)
        result = actions.do_submit(
            db.session,
            actor=request_actor(method="api"),
            workflow_key=data["workflow"],
            input_data=data["input_data"],
            title=data.get("title"),
            object_type=data.get("object_type"),
            object_id=data.get("object_id"),
            idempotency_key=idempotency_key(),
        )
        resp = action_response(result, 201)
        resp.headers["Location"] = url_for(f"{self.endpoint}.get", id=str(result.request_id))
        return resp

    @expose("/<id>", methods=("GET",))
    @endpoint("read")
    @openapi(
        "Get a request",
        description="The request with its input data and the state of every step.",
        path=_ID,
        ok={200: RequestDetailSchema},
    )
    def get(self, id: str) -> Response:
        session = db.session
        req = get_request_for(session, user_id=current_user_id(), request_id=id, read_only=True)
        steps = session.scalars(
            select(ApprovalStep)
            .where(ApprovalStep.request_id == req.id)
            .order_by(ApprovalStep.step_index)
        ).all()
        progress = queries.progress_of_requests(session, [req])[req.id]
        body = RequestDetailSchema().dump({**_with_progress(req, progress), "steps": steps})
        return self.response(200, **body)

    @expose("/<id>/timeline", methods=("GET",))
    @endpoint("read")
    @openapi(
        "Timeline of a request",
        description=(
            "Everything that happened, oldest first: submission, auto-approval, decisions "
            "(actor and on whose behalf, by name), comments, resubmissions with the changed "
            "fields, withdrawal, escalation, expiry and the outcome. The same list the "
            "request page shows."
        ),
        path=_ID,
        ok={200: TimelineSchema},
    )
    def timeline(self, id: str) -> Response:
        session = db.session
        req = get_request_for(session, user_id=current_user_id(), request_id=id, read_only=True)
        events = request_timeline(session, req)
        return self.response(200, **TimelineSchema().dump({"request_id": req.id, "result": events}))

    @expose("/<id>/withdraw", methods=("POST",))
    @endpoint("write")
    @openapi(
        "Withdraw a request",
        description="The requester takes a pending (or changes-requested) request back.",
        path=_ID,
        ok={200: ActionResultSchema},
        errors=(401, 403, 404, 409, 422),
        idempotent=True,
    )
    def withdraw(self, id: str) -> Response:
        req = get_request_for(db.session, user_id=current_user_id(), request_id=id)
        result = actions.do_withdraw(
            db.session,
            actor=request_actor(method="api"),
            request_id=req.id,
            idempotency_key=idempotency_key(),
        )
        return action_response(result)

    @expose("/<id>/resubmit", methods=("POST",))
    @endpoint("write")
    @openapi(
        "Resubmit a request",
        description=(
            "After changes were requested, the requester sends it round again from its first "
            "step, optionally with new `input_data` (validated like a submission)."
        ),
        path=_ID,
        body=ResubmitSchema,
        ok={200: ActionResultSchema},
        errors=(400, 401, 403, 404, 409, 415, 422),
        idempotent=True,
    )
    def resubmit(self, id: str) -> Response:
        data = json_body(ResubmitSchema())
        req = get_request_for(db.session, user_id=current_user_id(), request_id=id)
        result = actions.do_resubmit(
            db.session,
            actor=request_actor(method="api"),
            request_id=req.id,
            input_data=data.get("input_data"),
            idempotency_key=idempotency_key(),
        )
        return action_response(result)

    @expose("/<id>/request-changes", methods=("POST",))
    @endpoint("write", decides=True)
    @openapi(
        "Request changes",
        description=(
            "An approver sends the request back to its requester (at `step`, default: your "
            "active step)."
        ),
        path=_ID,
        body=RequestChangesSchema,
        ok={200: ActionResultSchema},
        errors=(400, 401, 403, 404, 409, 415, 422, 429),
        idempotent=True,
    )
    def request_changes(self, id: str) -> Response:
        return decide(actions.do_request_changes, id, json_body(_REQUEST_CHANGES_BODY))

    @expose("/<id>/comments", methods=("POST",))
    @endpoint("write")
    @openapi(
        "Comment on a request",
        description="Requester, approvers and tenant admins may comment (sanitized text).",
        path=_ID,
        body=CommentSchema,
        body_required=True,
        ok={201: ("Commented", ActionResultSchema)},
        errors=(400, 401, 403, 404, 409, 415, 422),
        idempotent=True,
    )
    def comment(self, id: str) -> Response:
        data = json_body(CommentSchema(), required=True)
        req = get_request_for(db.session, user_id=current_user_id(), request_id=id)
        result = actions.do_comment(
            db.session,
            actor=request_actor(method="api"),
            request_id=req.id,
            body=data["body"],
            idempotency_key=idempotency_key(),
        )
        return action_response(result, 201)

    @expose("/<id>/escalate", methods=("POST",))
    @endpoint("write", roles=(ADMIN_ROLE,))
    @openapi(
        "Escalate a request (tenant Admin)",
        description=(
            "Escalate the active step to its escalation target (its `escalate_to`, else "
            "the tenant's admins). Only once the step's SLA has passed: before, 422 "
            "`not_overdue`; a step without an SLA, 422 `no_sla`."
        ),
        path=_ID,
        ok={200: ActionResultSchema},
        errors=(401, 403, 404, 409, 422),
        idempotent=True,
    )
    def escalate(self, id: str) -> Response:
        req = get_request_for(db.session, user_id=current_user_id(), request_id=id)
        result = actions.do_escalate(
            db.session,
            actor=request_actor(method="api"),
            request_id=req.id,
            idempotency_key=idempotency_key(),
        )
        return action_response(result)


def _columns(req: ApprovalRequest) -> dict[str, Any]:
    return {c.key: getattr(req, c.key) for c in ApprovalRequest.__table__.columns}


def _with_progress(req: ApprovalRequest, progress: Any) -> dict[str, Any]:
    return {
        **_columns(req),
        "progress": progress.progress,
        "due_at": progress.due_at,
        "overdue": progress.overdue,
    }
