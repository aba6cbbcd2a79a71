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
   nothing is decided, in the best language known for someone Signoff cannot name
   (:func:`unlinked_language`): the Slack user's locale when the payload carries one,
   else the language of the admin who connected the workspace, else English.
5. A step that requires MFA is never decided from Slack: the answer links to the portal.
6. A rejection needs a reason (unless the workflow sets ``require_reason: false``): the
   Reject button decides nothing; it opens a modal (``views.open`` with the click's
   ``trigger_id``, callback ``signoff_reject_reason``) asking why, which carries the
   button's signed value and the click's ``response_url`` in its ``private_metadata``.
   Its submission (a ``view_submission``, signed and checked like a click) decides;
   an empty reason is answered with the modal's field error and decides nothing. When
   the modal cannot be opened, the answer links to the request page instead.
7. ``do_approve`` / ``do_reject`` with ``Actor(method="slack")`` and an idempotency key
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
from flask_babel import gettext as _
from slack_sdk.signature import Clock, SignatureVerifier
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session, scoped_session

from signoff import crypto
from signoff.db.binding import bound_tenant
from signoff.errors import ActionError, Conflict, DecisionRateLimited, NotFound, Refused
from signoff.languages import DEFAULT, LANGUAGES, force_locale, translated, user_language
from signoff.notifications import links, slack
from signoff.notifications import slack_settings as settings
from signoff.notifications.models import SlackConnection
from signoff.notifications.slack_client import (
    RESPONSE_URL_TIMEOUT,
    SlackCallFailed,
    call,
    post_to_url,
    web_client,
)
from signoff.tenancy.models import Membership, Tenant
from signoff.workflow.actions import Actor, do_approve, do_reject
from signoff.workflow.engine import StepState, state_from_dict, status_words, step_label
from signoff.workflow.models import ApprovalRequest, IdempotencyKey
from signoff.workflow.queries import reason_required

log = logging.getLogger(__name__)

#: Slack's window for a request's timestamp (seconds either side of now).
TIMESTAMP_WINDOW = 5 * 60
#: Refusals meaning "this step is settled": the message's buttons are replaced.
SETTLED = ("not_pending", "step_not_active", "already_decided", "not_changes_requested")
SIGNATURE_USER = 0
MAX_BODY = 64 * 1024
#: The modal that asks why a request is rejected, and its one input.
REASON_CALLBACK = "signoff_reject_reason"
REASON_BLOCK = "reason"
REASON_INPUT = "reason"
#: Slack's limits: ``private_metadata`` and a ``plain_text_input``'s ``max_length``.
METADATA_MAX = 3000
REASON_MAX = 3000


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
    #: The answer to a modal's submission: ``errors`` keeps it open with a field's
    #: error; otherwise the modal shows ``text`` (or closes when there is none).
    modal: bool = False
    errors: dict[str, str] | None = None

    def body(self) -> dict[str, Any]:
        """The HTTP answer's JSON."""
        if self.status != 200:
            return {"ok": False, "error": self.code or "refused"}
        if self.modal:
            if self.errors:
                return {"response_action": "errors", "errors": self.errors}
            if self.text:
                return {"response_action": "update", "view": _result_view(self.text)}
            return {}
        return self.message()

    def message(self) -> dict[str, Any]:
        """What goes to the ``response_url`` (and, for a click, the HTTP answer)."""
        if not self.text:
            return {}
        return {
            "response_type": "ephemeral",
            "replace_original": self.replace,
            "text": self.text,
        }


def _result_view(text: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Signoff"},
        "close": {"type": "plain_text", "text": _("Close")},
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}],
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
    if payload.get("type") not in ("block_actions", "view_submission"):
        return Answer(200, code="ignored")
    team = (payload.get("team") or {}).get("id")
    if conn.team_id and team != conn.team_id:
        return Answer(403, code="wrong_team")
    if payload["type"] == "view_submission":
        return _submit_reason(session, tenant, conn, payload)
    response_url = payload.get("response_url")
    response_url = response_url if isinstance(response_url, str) else None
    actions = payload.get("actions") or []
    action = actions[0] if actions and isinstance(actions[0], dict) else {}
    action_id = action.get("action_id")
    verdicts = {v: k for k, v in slack.ACTION_IDS.items()}
    if action_id not in verdicts:
        return Answer(200, code="ignored")  # e.g. the "Open in Signoff" link button
    answer = _decide(session, tenant, conn, payload, action, verdicts[str(action_id)])
    answer.response_url = response_url
    return answer


def _reason_of(view: dict[str, Any]) -> str:
    values = ((view.get("state") or {}).get("values") or {}).get(REASON_BLOCK) or {}
    found = values.get(REASON_INPUT) if isinstance(values, dict) else None
    value = found.get("value") if isinstance(found, dict) else None
    return value.strip() if isinstance(value, str) else ""


def _submit_reason(
    session: Session, tenant: Tenant, conn: SlackConnection, payload: dict[str, Any]
) -> Answer:
    """The reason modal's submission: decide the rejection with its reason."""
    view = payload.get("view") if isinstance(payload.get("view"), dict) else {}
    assert isinstance(view, dict)
    if view.get("callback_id") != REASON_CALLBACK:
        return Answer(200, code="ignored")
    try:
        meta = json.loads(str(view.get("private_metadata") or ""))
    except ValueError:
        meta = None
    if not isinstance(meta, dict) or not isinstance(meta.get("v"), str):
        return Answer(
            200, _("This form is not valid; nothing was decided."), code="invalid", modal=True
        )
    reason = _reason_of(view)
    if not reason:
        return Answer(
            200,
            code="reason_required",
            modal=True,
            errors={REASON_BLOCK: _("Say why you reject: the requester sees your reason.")},
        )
    answer = _decide(session, tenant, conn, payload, {"value": meta["v"]}, "reject", comment=reason)
    answer.modal = True
    url = meta.get("r")
    answer.response_url = url if isinstance(url, str) else None
    return answer


def _ask_reason(
    conn: SlackConnection,
    payload: dict[str, Any],
    value: str,
    req: ApprovalRequest,
    step: StepState,
    url: str,
) -> Answer:
    """Open the modal asking why (the click decides nothing); when Slack cannot open
    it, say where to reject instead."""
    title = slack.escape(req.title)
    fallback = Answer(
        200,
        _(
            "Rejecting “%(title)s” needs a reason the requester can read: "
            "<%(url)s|reject it in Signoff>, saying why. Nothing was decided.",
            title=title,
            url=url,
        ),
        code="reason_required",
    )
    trigger = payload.get("trigger_id")
    try:
        token = settings.bot_token(conn)
    except crypto.InvalidToken:
        token = None
    if not isinstance(trigger, str) or not trigger or not token:
        return fallback
    meta = {"v": value, "r": payload.get("response_url")}
    if len(json.dumps(meta)) > METADATA_MAX:
        meta = {"v": value}
    view = {
        "type": "modal",
        "callback_id": REASON_CALLBACK,
        "private_metadata": json.dumps(meta),
        "title": {"type": "plain_text", "text": _("Reject request")},
        "submit": {"type": "plain_text", "text": _("Reject")},
        "close": {"type": "plain_text", "text": _("Cancel")},
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"*{title}*\n"
                    + _("Step: %(step)s", step=slack.escape(step_label(step.name))),
                },
            },
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": {"type": "plain_text", "text": _("Why do you reject it?")},
                "hint": {"type": "plain_text", "text": _("The requester sees your reason.")},
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_INPUT,
                    "multiline": True,
                    "min_length": 1,
                    "max_length": REASON_MAX,
                },
            },
        ],
    }
    try:
        # Slack's trigger_id lives three seconds: the modal opens at once or not at all.
        call(web_client(token, timeout=2), "views.open", trigger_id=trigger, view=view)
    except SlackCallFailed as exc:
        log.warning("Slack views.open failed: %s", exc.message)
        return fallback
    return Answer(200, code="reason_asked")


def unlinked_language(session: Session, conn: SlackConnection, payload: dict[str, Any]) -> str:
    """The language to answer a Slack user who is linked to no member: Signoff knows no
    profile for them. Slack's ``locale`` of the user (``de-DE``) when the payload has it
    and Signoff speaks it; else the profile language of the admin who connected this
    workspace (the tenant has no language of its own, and that admin chose the
    workspace for it); else English."""
    user = payload.get("user")
    locale = user.get("locale") if isinstance(user, dict) else None
    if isinstance(locale, str):
        language = locale.replace("_", "-").split("-")[0].lower()
        if language in LANGUAGES:
            return language
    if conn.connected_by is not None:
        return user_language(int(conn.connected_by), session) or DEFAULT
    return DEFAULT


def _decide(
    session: Session,
    tenant: Tenant,
    conn: SlackConnection,
    payload: dict[str, Any],
    action: dict[str, Any],
    verdict: str,
    *,
    comment: str | None = None,
) -> Answer:
    slack_user = str((payload.get("user") or {}).get("id") or "")
    member = settings.member_for_slack_user(session, slack_user) if slack_user else None
    if member is None:
        with force_locale(unlinked_language(session, conn, payload)):
            return Answer(
                200,
                _(
                    "Your Slack account is not linked to a member of %(tenant)s in Signoff, "
                    "so nothing was decided. Link it on <%(url)s|your Slack page in Signoff>.",
                    tenant=slack.escape(tenant.name),
                    url=settings.link_page_url(tenant.slug),
                ),
                code="unlinked",
            )
    # The answer speaks the member's language (their profile's; English when none).
    with force_locale(user_language(member, session) or DEFAULT):
        return _decide_as(session, tenant, conn, payload, action, verdict, member, comment)


def _decide_as(
    session: Session,
    tenant: Tenant,
    conn: SlackConnection,
    payload: dict[str, Any],
    action: dict[str, Any],
    verdict: str,
    member: int,
    comment: str | None,
) -> Answer:
    slack_user = str((payload.get("user") or {}).get("id") or "")
    if not _active_member(session, member):
        return Answer(200, _("You are not an active member of this organisation."), code="inactive")
    try:
        claim = slack.read_button_value(str(action.get("value") or ""))
    except slack.ButtonError as exc:
        if exc.code == "expired":
            return Answer(
                200,
                _("These buttons have expired: open the request in Signoff to decide."),
                code="expired",
            )
        return Answer(200, _("This button is not valid; nothing was decided."), code="invalid")
    if claim.tenant_id != tenant.id or claim.verdict != verdict:
        return Answer(200, _("This button is not valid; nothing was decided."), code="invalid")
    url = links.request_page_url(tenant.slug, claim.request_id)
    if claim.user_id != member:
        return Answer(
            200, _("This message was sent to another member; nothing was decided."), code="other"
        )
    req = session.get(ApprovalRequest, claim.request_id)
    if req is None:
        return Answer(200, _("This request no longer exists."), code="not_found")
    title = slack.escape(req.title)
    if req.round != claim.round:
        return Answer(
            200,
            _(
                "“%(title)s” was resubmitted since this message: <%(url)s|open it in Signoff>.",
                title=title,
                url=url,
            ),
            replace=True,
            code="old_round",
        )
    steps = state_from_dict(req.state).steps
    if not 0 <= claim.step_index < len(steps):
        return Answer(200, _("This button is not valid; nothing was decided."), code="invalid")
    step = steps[claim.step_index]
    label = slack.escape(step_label(step.name))
    settled = _(
        "“%(title)s”, %(step)s: already decided, nothing changed. <%(url)s|Open in Signoff>.",
        title=title,
        step=label,
        url=url,
    )
    mfa_answer = Answer(
        200,
        _(
            "“%(step)s” needs a multi-factor check, so it cannot be decided in Slack: "
            "<%(url)s|decide in Signoff>.",
            step=label,
            url=url,
        ),
        code="mfa_required",
    )
    if step.requires_mfa or tenant.mfa_required:
        # A Slack click is one factor: a step (or an organisation) that requires MFA is
        # decided in Signoff, where the authenticator's code is asked for.
        return mfa_answer
    if verdict == "reject" and not comment and reason_required(session, req):
        principal = claim.on_behalf_of if claim.on_behalf_of is not None else member
        if (
            req.status != "pending"
            or step.status != "active"
            or any(d.principal == principal for d in step.decisions)
        ):
            # Settled already: say so rather than ask why.
            return Answer(
                200,
                settled,
                replace=True,
                code="already_decided",
            )
        return _ask_reason(conn, payload, str(action.get("value") or ""), req, step, url)
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
            comment=comment,
            idempotency_key=_idempotency_key(tenant.id, slack_user, claim),
            expected_round=claim.round,  # compared again under the request's lock
        )
    except Refused as exc:
        if exc.code == "mfa_required":
            return mfa_answer
        if exc.code in SETTLED:
            return Answer(
                200,
                settled,
                replace=True,
                code=exc.code,
            )
        return Answer(
            200,
            _(
                "Not allowed: %(reason)s. Nothing was decided.",
                reason=slack.escape(translated(exc.message)),
            ),
            code=exc.code,
        )
    except DecisionRateLimited as exc:
        return Answer(
            200,
            _("Too many decisions: try again in %(seconds)s s.", seconds=exc.retry_after),
            code=exc.code,
        )
    except Conflict as exc:
        return Answer(200, f"{slack.escape(translated(exc.message))}.", code=exc.code)
    except NotFound:
        return Answer(200, _("Not allowed: this request is not yours to decide."), code="not_found")
    except ActionError as exc:
        return Answer(
            200,
            _("Not allowed: %(reason)s.", reason=slack.escape(translated(exc.message))),
            code=exc.code,
        )
    done = "approved" if verdict == "approve" else "rejected"
    return Answer(
        200,
        (
            _("You approved “%(title)s” (%(step)s) in Slack.", title=title, step=label)
            if verdict == "approve"
            else _("You rejected “%(title)s” (%(step)s) in Slack.", title=title, step=label)
        )
        + " "
        + _(
            "%(status)s <%(url)s|Open in Signoff>.",
            status=status_sentence(result.status),
            url=url,
        ),
        replace=True,
        decided=not result.replayed,
        code="replayed" if result.replayed else done,
    )


def status_sentence(status: str) -> str:
    """What a decision left the request as, in people's words."""
    if status == "pending":
        return str(_("The request waits for its next approval."))
    if status == "approved":
        return str(_("That was the last step: the request is approved."))
    if status == "rejected":
        return str(_("The request is rejected and its requester is told."))
    return str(_("The request is %(status)s.", status=translated(status_words(status))))


def respond(answer: Answer) -> None:
    """Send the answer to the payload's ``response_url`` too (Slack shows that one for
    button clicks); a failure is logged, never raised."""
    if answer.status != 200 or not answer.text or not answer.response_url:
        return
    try:
        post_to_url(answer.response_url, answer.message(), timeout=RESPONSE_URL_TIMEOUT)
    except SlackCallFailed as exc:
        log.warning("Slack response_url failed: %s", exc.message)
