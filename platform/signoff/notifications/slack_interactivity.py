"""Slack button clicks (``POST /slack/t/<slug>/interactivity``): checked, then decided
through the same actions as the portal and the API.

In order, and nothing is written before the third step succeeds:

1. Slack must be switched on (``FAB_APPROVAL_SLACK_NOTIFICATIONS``). The tenant comes
   from the URL's slug (the global ``tenant`` row) and is bound; its
   signing secret is read under row-level security. Unknown, suspended or unconnected
   tenants: 404.
2. Slack's signature (``X-Slack-Signature``, HMAC-SHA256 of ``v0:<timestamp>:<body>``
   under that tenant's signing secret) is checked with
   ``slack_sdk.signature.SignatureVerifier``; a timestamp more than five minutes away
   from now is stale. Missing, wrong or stale: 401. So a payload signed with another
   tenant's secret is refused here.
3. The signature is recorded once (``idempotency_key``, user 0, key
   ``slack-sig:<sha256>``, in the tenant's own rows): the same signed request seen again
   is a replay, 401.
4. The Slack user must have a confirmed link to an active member of the tenant; the
   button's signed value must name that member, this tenant, the request's current
   round and a verdict matching the button. An unlinked user is told how to link and
   nothing is decided.
5. A step that requires MFA is never decided from Slack: the answer links to the portal.
6. ``do_approve`` / ``do_reject`` with ``Actor(method="slack")`` and an idempotency key
   derived from the click (Slack user, request, step, round, verdict), so the same click
   arriving twice decides once. The engine re-checks eligibility, self-approval,
   delegation, the step's state and the decision budget.

The answer (approved, already decided, not allowed, ...) is the HTTP response, sent at
once (Slack waits three seconds at most); the same text then goes to the payload's
``response_url``, which is what Slack shows for a button click (replacing the message
when the step is settled, otherwise as an ephemeral note).

Known limit: the round is compared before the action's transaction, so a resubmission
landing between that check and the decision could let an old button decide the same
step of the new round (the action still checks that the member may decide it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from flask_appbuilder.security.sqla.models import User
from slack_sdk.signature import Clock, SignatureVerifier
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session, scoped_session

from signoff import crypto
from signoff.db.binding import bound_tenant
from signoff.errors import ActionError, Conflict, DecisionRateLimited, NotFound, Refused
from signoff.notifications import links, slack
from signoff.notifications import slack_settings as settings
from signoff.notifications.models import SlackConnection
from signoff.notifications.slack_client import RESPONSE_URL_TIMEOUT, SlackCallFailed, post_to_url
from signoff.tenancy.models import Membership, Tenant
from signoff.workflow.actions import Actor, do_approve, do_reject
from signoff.workflow.engine import state_from_dict
from signoff.workflow.models import ApprovalRequest, IdempotencyKey

log = logging.getLogger(__name__)

#: Slack's window for a request's timestamp (seconds either side of now).
TIMESTAMP_WINDOW = 5 * 60
#: Refusals meaning "this step is settled": the message's buttons are replaced.
SETTLED = ("not_pending", "step_not_active", "already_decided", "not_changes_requested")
SIGNATURE_USER = 0
MAX_BODY = 64 * 1024


@dataclass
class Answer:
    """What Slack gets: an HTTP status and, for a 200, the text the clicking user sees."""

    status: int
    text: str = ""
    #: Replace the message (the step is settled) instead of an ephemeral note.
    replace: bool = False
    decided: bool = False
    code: str = ""
    response_url: str | None = None

    def body(self) -> dict[str, Any]:
        if self.status != 200:
            return {"ok": False, "error": self.code or "refused"}
        if not self.text:
            return {}
        return {
            "response_type": "ephemeral",
            "replace_original": self.replace,
            "text": self.text,
        }


class _FixedClock(Clock):
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def verify(secret: str, body: bytes, headers: Mapping[str, str], *, now: float) -> tuple[bool, str]:
    """Whether Slack signed ``body`` with ``secret`` within the window; the reason if not."""
    timestamp = _header(headers, "X-Slack-Request-Timestamp")
    signature = _header(headers, "X-Slack-Signature")
    if not timestamp or not signature:
        return False, "unsigned"
    try:
        ts = int(timestamp)
    except ValueError:
        return False, "bad_timestamp"
    if abs(now - ts) > TIMESTAMP_WINDOW:
        return False, "stale"
    verifier = SignatureVerifier(secret, clock=_FixedClock(now))
    if not verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
        return False, "bad_signature"
    return True, ""


def _claim_signature(session: Session, signature: str, body: bytes) -> bool:
    """Record a verified signature once (in the bound tenant); ``False`` for a replay."""
    key = "slack-sig:" + hashlib.sha256(signature.encode()).hexdigest()
    inserted = session.execute(
        pg_insert(IdempotencyKey)
        .values(
            user_id=SIGNATURE_USER,
            key=key,
            action="slack.interactivity",
            fingerprint=hashlib.sha256(body).hexdigest(),
        )
        .on_conflict_do_nothing()
        .returning(IdempotencyKey.key)
    ).first()
    session.commit()
    return inserted is not None


def _payload(body: bytes) -> dict[str, Any] | None:
    try:
        form = parse_qs(body.decode("utf-8"), strict_parsing=False)
        raw = form.get("payload", [None])[0]
        data = json.loads(raw) if raw else None
    except (UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _idempotency_key(tenant_id: uuid.UUID, slack_user: str, claim: slack.ButtonClaim) -> str:
    raw = "|".join(
        str(x)
        for x in (
            tenant_id,
            slack_user,
            claim.request_id,
            claim.step_index,
            claim.round,
            claim.verdict,
            claim.on_behalf_of,
        )
    )
    return "slack:" + hashlib.sha256(raw.encode()).hexdigest()


def _active_member(session: Session, user_id: int) -> bool:
    membership = session.scalars(
        select(Membership.id).where(Membership.user_id == user_id, Membership.active.is_(True))
    ).first()
    user = session.get(User, user_id)
    return membership is not None and user is not None and bool(user.active)


def handle(
    session: Session | scoped_session[Session],
    *,
    slug: str,
    body: bytes,
    headers: Mapping[str, str],
    now: float | None = None,
) -> Answer:
    """Check and act on one interactivity request (see the module's docstring)."""
    now = time.time() if now is None else now
    real = session() if isinstance(session, scoped_session) else session
    if len(body) > MAX_BODY:
        return Answer(413, code="too_large")
    if not slack.enabled():
        # The platform switch turns Slack off both ways: no messages, no decisions.
        return Answer(404, code="disabled")
    tenant = real.scalars(select(Tenant).where(Tenant.slug == slug)).first()
    real.commit()
    if tenant is None or tenant.status != "active":
        return Answer(404, code="not_found")
    with bound_tenant(tenant.id, real):
        try:
            return _handle_bound(real, tenant, body, headers, now)
        finally:
            real.rollback()


def _handle_bound(
    session: Session, tenant: Tenant, body: bytes, headers: Mapping[str, str], now: float
) -> Answer:
    conn = session.get(SlackConnection, tenant.id)
    try:
        secret = settings.signing_secret(conn) if conn is not None else None
    except crypto.InvalidToken:
        secret = None
    if conn is None or not secret:
        return Answer(404, code="not_found")
    ok, reason = verify(secret, body, headers, now=now)
    if not ok:
        return Answer(401, code=reason)
    signature = _header(headers, "X-Slack-Signature") or ""
    if not _claim_signature(session, signature, body):
        return Answer(401, code="replayed")

    payload = _payload(body)
    if payload is None:
        return Answer(400, code="bad_payload")
    if payload.get("type") != "block_actions":
        return Answer(200, code="ignored")
    team = (payload.get("team") or {}).get("id")
    if conn.team_id and team != conn.team_id:
        return Answer(403, code="wrong_team")
    response_url = payload.get("response_url")
    response_url = response_url if isinstance(response_url, str) else None
    actions = payload.get("actions") or []
    action = actions[0] if actions and isinstance(actions[0], dict) else {}
    action_id = action.get("action_id")
    verdicts = {v: k for k, v in slack.ACTION_IDS.items()}
    if action_id not in verdicts:
        return Answer(200, code="ignored")  # e.g. the "Open in Signoff" link button
    answer = _decide(session, tenant, payload, action, verdicts[str(action_id)])
    answer.response_url = response_url
    return answer


def _decide(
    session: Session,
    tenant: Tenant,
    payload: dict[str, Any],
    action: dict[str, Any],
    verdict: str,
) -> Answer:
    slack_user = str((payload.get("user") or {}).get("id") or "")
    member = settings.member_for_slack_user(session, slack_user) if slack_user else None
    if member is None:
        return Answer(
            200,
            "Your Slack account is not linked to a member of "
            f"{slack.escape(tenant.name)} in Signoff, so nothing was decided. Link it on "
            f"<{settings.link_page_url(tenant.slug)}|your Slack page in Signoff>.",
            code="unlinked",
        )
    if not _active_member(session, member):
        return Answer(200, "You are not an active member of this organisation.", code="inactive")
    try:
        claim = slack.read_button_value(str(action.get("value") or ""))
    except slack.ButtonError as exc:
        if exc.code == "expired":
            return Answer(
                200,
                "These buttons have expired: open the request in Signoff to decide.",
                code="expired",
            )
        return Answer(200, "This button is not valid; nothing was decided.", code="invalid")
    if claim.tenant_id != tenant.id or claim.verdict != verdict:
        return Answer(200, "This button is not valid; nothing was decided.", code="invalid")
    url = links.request_page_url(tenant.slug, claim.request_id)
    if claim.user_id != member:
        return Answer(
            200, "This message was sent to another member; nothing was decided.", code="other"
        )
    req = session.get(ApprovalRequest, claim.request_id)
    if req is None:
        return Answer(200, "This request no longer exists.", code="not_found")
    title = slack.escape(req.title)
    if req.round != claim.round:
        return Answer(
            200,
            f"“{title}” was resubmitted since this message: <{url}|open it in Signoff>.",
            replace=True,
            code="old_round",
        )
    steps = state_from_dict(req.state).steps
    if not 0 <= claim.step_index < len(steps):
        return Answer(200, "This button is not valid; nothing was decided.", code="invalid")
    step = steps[claim.step_index]
    mfa_answer = Answer(
        200,
        f"“{slack.escape(step.name)}” needs a multi-factor check, so it cannot be decided "
        f"in Slack: <{url}|decide in Signoff>.",
        code="mfa_required",
    )
    if step.requires_mfa or tenant.mfa_required:
        # A Slack click is one factor: a step (or an organisation) that requires MFA is
        # decided in Signoff, where the authenticator's code is asked for.
        return mfa_answer
    actor = Actor(
        user_id=member,
        method="slack",
        user_agent=f"Slack {payload.get('team', {}).get('id', '')}/{slack_user}"[:512],
    )
    act = do_approve if verdict == "approve" else do_reject
    session.commit()  # the action begins its own transaction
    try:
        result = act(
            session,
            actor=actor,
            request_id=claim.request_id,
            step_index=claim.step_index,
            on_behalf_of=claim.on_behalf_of,
            idempotency_key=_idempotency_key(tenant.id, slack_user, claim),
            expected_round=claim.round,  # compared again under the request's lock
        )
    except Refused as exc:
        if exc.code == "mfa_required":
            return mfa_answer
        if exc.code in SETTLED:
            return Answer(
                200,
                f"“{title}”, {slack.escape(step.name)}: already decided, nothing changed. "
                f"<{url}|Open in Signoff>.",
                replace=True,
                code=exc.code,
            )
        return Answer(
            200, f"Not allowed: {slack.escape(exc.message)}. Nothing was decided.", code=exc.code
        )
    except DecisionRateLimited as exc:
        return Answer(200, f"Too many decisions: try again in {exc.retry_after} s.", code=exc.code)
    except Conflict as exc:
        return Answer(200, f"{slack.escape(exc.message)}.", code=exc.code)
    except NotFound:
        return Answer(200, "Not allowed: this request is not yours to decide.", code="not_found")
    except ActionError as exc:
        return Answer(200, f"Not allowed: {slack.escape(exc.message)}.", code=exc.code)
    done = "approved" if verdict == "approve" else "rejected"
    status = result.status.replace("_", " ")
    return Answer(
        200,
        f"You {done} “{title}” ({slack.escape(step.name)}) in Slack. "
        f"The request is now {status}. <{url}|Open in Signoff>.",
        replace=True,
        decided=not result.replayed,
        code="replayed" if result.replayed else done,
    )


def respond(answer: Answer) -> None:
    """Send the answer to the payload's ``response_url`` too (Slack shows that one for
    button clicks); a failure is logged, never raised."""
    if answer.status != 200 or not answer.text or not answer.response_url:
        return
    try:
        post_to_url(answer.response_url, answer.body(), timeout=RESPONSE_URL_TIMEOUT)
    except SlackCallFailed as exc:
        log.warning("Slack response_url failed: %s", exc.message)
