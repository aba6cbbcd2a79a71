"""The specification's four endpoints, exactly as written::

    GET    /api/v1/approval-workflow/pending
    POST   /api/v1/approval-workflow/approve/{id}/{step}   (step is 0-based)
    POST   /api/v1/approval-workflow/reject/{id}           (your active step)
    GET    /api/v1/approval-workflow/history/{id}

Decisions go through :func:`signoff.workflow.actions.do_approve` / ``do_reject``, so
self-approval, eligibility, once-per-step, MFA freshness and the advisory lock hold
as for every other caller; they are rate limited per the specification's
``FAB_APPROVAL_MAX_APPROVALS_PER_WINDOW`` and accept an ``Idempotency-Key``.
"""

from __future__ import annotations

from flask_appbuilder.api import expose
from werkzeug.wrappers import Response

from signoff.api.approval_workflow_schemas import (
    HistoryEntrySchema,
    HistorySchema,
    InboxItemSchema,
    PendingListSchema,
    PendingQuerySchema,
)
from signoff.api.base import (
    UUID_PATH,
    TenantBaseApi,
    endpoint,
    json_body,
    openapi,
    query_args,
)
from signoff.api.common_schemas import (
    ActionResultSchema,
    DecisionSchema,
    ErrorSchema,
    RejectSchema,
)
from signoff.api.requests import current_user_id, decide
from signoff.extensions import db
from signoff.workflow import actions, queries
from signoff.workflow.manager import history
from signoff.workflow.queries import get_request_for

_ID = ("id", UUID_PATH)
_STEP = ("step", {"type": "integer", "minimum": 0, "description": "0-based step index"})


#: Loading holds no per-call state (messages are translated when an error is answered):
#: one instance of each decision body serves every call, not a copy of its fields each.
_DECISION_BODY = DecisionSchema()
_REJECT_BODY = RejectSchema()


class ApprovalWorkflowApi(TenantBaseApi):
    resource_name = "approval-workflow"
    openapi_spec_tag = "Approval workflow"
    openapi_spec_component_schemas = (
        ErrorSchema,
        ActionResultSchema,
        InboxItemSchema,
        PendingListSchema,
        DecisionSchema,
        RejectSchema,
        HistoryEntrySchema,
        HistorySchema,
    )

    @expose("/pending", methods=("GET",))
    @endpoint("read")
    @openapi(
        "Get pending approvals",
        description=(
            "Steps waiting for your decision (including as a delegate), newest request first."
        ),
        query=PendingQuerySchema,
        ok={200: PendingListSchema},
        errors=(401, 403, 422),
    )
    def pending(self) -> Response:
        args = query_args(PendingQuerySchema())
        size = args["page_size"]
        items = queries.inbox(
            db.session,
            current_user_id(),
            search=args.get("search"),
            workflow=args.get("workflow"),
            limit=size + 1,
            offset=args["page"] * size,
        )
        page = [
            {**item.to_dict(), "due_at": item.due_at, "submitted_at": item.submitted_at}
            for item in items[:size]
        ]
        body = PendingListSchema().dump(
            {
                "count": len(page),
                "page": args["page"],
                "page_size": size,
                "has_more": len(items) > size,
                "result": page,
            }
        )
        return self.response(200, **body)

    @expose("/approve/<id>/<int:step>", methods=("POST",))
    @endpoint("write", decides=True)
    @openapi(
        "Approve step",
        description=(
            "Approve step `step` (0-based) of request `id`. Refusals are 422 with a code "
            "(self_approval, not_eligible, mfa_required, ...); a request that moved on "
            "(already decided, step no longer active, not pending) is 409."
        ),
        path=[_ID, _STEP],
        body=DecisionSchema,
        ok={200: ActionResultSchema},
        errors=(400, 401, 403, 404, 409, 415, 422, 429),
        idempotent=True,
    )
    def approve(self, id: str, step: int) -> Response:
        return decide(actions.do_approve, id, json_body(_DECISION_BODY), step=step)

    @expose("/reject/<id>", methods=("POST",))
    @endpoint("write", decides=True)
    @openapi(
        "Reject approval",
        description=(
            "Reject request `id` at your active step (or at `step` when you may decide "
            "several). The request ends rejected."
        ),
        path=[_ID],
        body=RejectSchema,
        ok={200: ActionResultSchema},
        errors=(400, 401, 403, 404, 409, 415, 422, 429),
        idempotent=True,
    )
    def reject(self, id: str) -> Response:
        return decide(actions.do_reject, id, json_body(_REJECT_BODY))

    @expose("/history/<id>", methods=("GET",))
    @endpoint("read")
    @openapi(
        "Get approval history",
        description="Every decision on request `id`, oldest first (the specification's "
        "get_approval_history).",
        path=[_ID],
        ok={200: HistorySchema},
    )
    def get_history(self, id: str) -> Response:
        req = get_request_for(db.session, user_id=current_user_id(), request_id=id, read_only=True)
        entries = history(db.session, req.id)
        body = HistorySchema().dump(
            {"request_id": req.id, "count": len(entries), "result": entries}
        )
        return self.response(200, **body)
