"""Flask (blinker) signals for each outcome of a request, sent after commit.

Subscribe in the host app::

    from signoff.workflow.signals import request_approved

    @request_approved.connect_via(app)
    def on_approved(sender, request_id, tenant_id, status, events, **extra): ...

``sender`` is the Flask app; every signal carries ``request_id``, ``tenant_id``,
``status`` (the request's status after the action) and ``events`` (the engine's
event kinds). They are sent once the decision has committed, so a receiver reads
what was written; a receiver that raises is logged and never undoes the decision.
"""

from __future__ import annotations

import uuid

from blinker import Namespace
from flask import current_app, has_app_context

_signals = Namespace()

request_submitted = _signals.signal("signoff.request-submitted")
step_completed = _signals.signal("signoff.step-completed")
request_approved = _signals.signal("signoff.request-approved")
request_rejected = _signals.signal("signoff.request-rejected")
request_withdrawn = _signals.signal("signoff.request-withdrawn")
changes_requested = _signals.signal("signoff.changes-requested")
request_resubmitted = _signals.signal("signoff.request-resubmitted")
request_expired = _signals.signal("signoff.request-expired")
request_escalated = _signals.signal("signoff.request-escalated")

#: Engine event kind -> the signal sent for it.
BY_EVENT = {
    "request_submitted": request_submitted,
    "step_completed": step_completed,
    "request_approved": request_approved,
    "request_rejected": request_rejected,
    "request_withdrawn": request_withdrawn,
    "changes_requested": changes_requested,
    "request_resubmitted": request_resubmitted,
    "request_expired": request_expired,
    "escalated": request_escalated,
}


def send_outcome(
    tenant_id: uuid.UUID, request_id: uuid.UUID, status: str, events: list[str]
) -> None:
    """Send the signal of every outcome in ``events`` (once each), after commit."""
    if not has_app_context():
        return
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    for kind in dict.fromkeys(events):
        signal = BY_EVENT.get(kind)
        if signal is not None and signal.receivers:
            signal.send(
                app, request_id=request_id, tenant_id=tenant_id, status=status, events=events
            )
