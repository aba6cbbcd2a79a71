"""Signed links that act: approve or reject one step from an e-mail.

A token is signed with ``SECRET_KEY`` (itsdangerous, its own salt) and names the
tenant, the approver, the request, the step, its round and the verdict, plus a
random id. It expires after ``SIGNOFF_ACTION_LINK_MAX_AGE`` seconds (72 hours by
default). It is single use: the decision is taken with the idempotency key
``link:<id>``, written in the decision's own transaction, so a second POST of the
same link finds its first result and is refused as used. A GET only shows a
confirmation page (mail scanners prefetch links); the POST decides.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

SALT = "signoff-action-link-v1"
VERDICTS = ("approve", "reject")


class LinkError(Exception):
    """The link cannot be used; ``code`` says why (``invalid``, ``expired``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ActionClaim:
    tenant_id: uuid.UUID
    user_id: int
    request_id: uuid.UUID
    step_index: int
    round: int
    verdict: str
    jti: str
    on_behalf_of: int | None = None

    @property
    def idempotency_key(self) -> str:
        return f"link:{self.jti}"


def _serializer(salt: str = SALT) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(str(current_app.config["SECRET_KEY"]), salt=salt)


def max_age() -> int:
    return int(current_app.config.get("SIGNOFF_ACTION_LINK_MAX_AGE", 72 * 3600))


def make_token(
    *,
    tenant_id: uuid.UUID,
    user_id: int,
    request_id: uuid.UUID,
    step_index: int,
    round: int,
    verdict: str,
    on_behalf_of: int | None = None,
    salt: str = SALT,
) -> str:
    """A signed token for one decision (``salt`` keeps e-mail links and Slack buttons
    apart: one is never accepted as the other)."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}")
    return str(
        _serializer(salt).dumps(
            {
                "t": str(tenant_id),
                "u": int(user_id),
                "r": str(request_id),
                "s": int(step_index),
                "n": int(round),
                "v": verdict,
                "j": secrets.token_urlsafe(16),
                "b": on_behalf_of,
            }
        )
    )


def read_token(token: str, *, salt: str = SALT) -> ActionClaim:
    """The claim of a valid, unexpired token; :class:`LinkError` otherwise."""
    try:
        data = _serializer(salt).loads(token, max_age=max_age())
    except SignatureExpired:
        raise LinkError(
            "expired", "This link has expired. Open the request in Signoff to decide."
        ) from None
    except BadSignature:
        raise LinkError("invalid", "This link is not valid.") from None
    try:
        claim = ActionClaim(
            tenant_id=uuid.UUID(data["t"]),
            user_id=int(data["u"]),
            request_id=uuid.UUID(data["r"]),
            step_index=int(data["s"]),
            round=int(data["n"]),
            verdict=str(data["v"]),
            jti=str(data["j"]),
            on_behalf_of=int(data["b"]) if data.get("b") is not None else None,
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        raise LinkError("invalid", "This link is not valid.") from None
    if claim.verdict not in VERDICTS:
        raise LinkError("invalid", "This link is not valid.")
    return claim


def action_url(token: str) -> str:
    return f"{base_url()}/act/{token}"


def base_url() -> str:
    """Where people reach this installation (``SIGNOFF_BASE_URL``), without a trailing /."""
    return str(current_app.config.get("SIGNOFF_BASE_URL") or "http://127.0.0.1:8080").rstrip("/")


def in_host() -> bool:
    """True inside a host app (the add-on): there is no portal, no e-mail action links
    and no Slack interactivity endpoint; every link leads to "Pending Approvals"."""
    return "signoff_addon" in current_app.extensions


def pending_url() -> str:
    """The add-on's "Pending Approvals" page."""
    return f"{base_url()}/approvals/pending/"


def request_page_url(slug: str, request_id: uuid.UUID | str) -> str:
    """Where a person opens one request: its portal page, or "Pending Approvals" in a
    host app."""
    return pending_url() if in_host() else f"{base_url()}/t/{slug}/requests/{request_id}"
