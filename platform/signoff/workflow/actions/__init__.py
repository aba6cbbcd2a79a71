"""Every state change of a request, one ``do_<verb>()`` each (docs/ARCHITECTURE.md §4).

Each action runs in one transaction: the per-request advisory lock first, then
the read, the pure engine's verdict, the writes, the audit record and the
notification outbox rows; notifications are emitted only after commit. The
acting user is always a keyword argument, and the security rules (no
self-approval, eligibility, once per step, MFA freshness) hold whatever the
caller: web view, API, CLI or the add-on.
"""

from signoff.errors import ActionError, Conflict, Invalid, NotFound, Refused
from signoff.workflow.actions.attachments import check_upload, do_attach, do_detach
from signoff.workflow.actions.core import (
    ADOPTED,
    SYSTEM,
    ActionResult,
    Actor,
    after_commit_listeners,
    in_transaction_listeners,
    run_callbacks,
    stats,
)
from signoff.workflow.actions.decisions import do_approve, do_reject, do_request_changes
from signoff.workflow.actions.delegations import do_delegate, do_revoke_delegation
from signoff.workflow.actions.requests import (
    do_comment,
    do_escalate,
    do_expire,
    do_resubmit,
    do_submit,
    do_withdraw,
)
from signoff.workflow.actions.workflows import do_save_workflow

__all__ = [
    "ADOPTED",
    "SYSTEM",
    "ActionError",
    "ActionResult",
    "Actor",
    "Conflict",
    "Invalid",
    "NotFound",
    "Refused",
    "after_commit_listeners",
    "check_upload",
    "do_approve",
    "do_attach",
    "do_comment",
    "do_delegate",
    "do_detach",
    "do_escalate",
    "do_expire",
    "do_reject",
    "do_request_changes",
    "do_resubmit",
    "do_revoke_delegation",
    "do_save_workflow",
    "do_submit",
    "do_withdraw",
    "in_transaction_listeners",
    "run_callbacks",
    "stats",
]
