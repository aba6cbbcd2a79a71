"""Errors that cross floors: a leaf module that imports nothing of ours.

The actions raise :class:`ActionError` and its kinds; the API and the views turn
them into answers (``status`` is the HTTP status). :class:`AddonLoadError` says why
the add-on cannot run in a host app.
"""

from __future__ import annotations

from typing import Any


class Message(str):
    """An English message made from a catalogue ``msgid`` with ``%(name)s`` placeholders
    and their ``params``: it reads (logs, tests, ``str()``) as the English sentence, and
    :func:`signoff.languages.translated` translates the msgid and fills in the values."""

    msgid: str
    params: dict[str, Any]

    def __new__(cls, msgid: str, params: dict[str, Any]) -> Message:
        # A list of messages (a password's problems) reads as one, joined with "; ".
        english = {
            k: "; ".join(map(str, v)) if isinstance(v, list | tuple) else v
            for k, v in params.items()
        }
        self = super().__new__(cls, msgid % english)
        self.msgid = msgid
        self.params = params
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (Message, (self.msgid, self.params))


def N_(message: str, /, **params: Any) -> str:
    """Mark ``message`` for the translation catalogue without translating it here: the
    text stays English where it is made (any floor, outside a request too) and is
    translated where a person reads it (:func:`signoff.languages.translated`). With
    ``params`` the message is a :class:`Message`: ``N_("No workflow '%(key)s'", key=k)``
    keeps the value apart, so the translation can place it."""
    return Message(message, params) if params else message


class ActionError(Exception):
    """A refused or failed action: ``status`` is the HTTP status an API answers with."""

    status = 400

    def __init__(
        self,
        code: str,
        message: str,
        *,
        field: str | None = None,
        errors: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.errors = errors

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        if self.errors:
            body["errors"] = self.errors
        return body


class NotFound(ActionError):
    status = 404


class Conflict(ActionError):
    status = 409


class Forbidden(ActionError):
    """The caller may see the object but not change it (a workflow's auditor): 403."""

    status = 403


class Refused(ActionError):
    """The engine or a security rule refused: the request is unchanged."""

    status = 422


class Invalid(ActionError):
    status = 422


class DecisionRateLimited(ActionError):
    """The per-user decision budget is spent (``FAB_APPROVAL_MAX_APPROVALS_PER_WINDOW``)."""

    status = 429

    def __init__(self, limit: str, retry_after: int) -> None:
        super().__init__(
            "rate_limited",
            N_(
                "Too many decisions: at most %(limit)s; retry in %(seconds)s s",
                limit=limit,
                seconds=retry_after,
            ),
        )
        self.limit = limit
        self.retry_after = retry_after

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "retry_after": self.retry_after}


class QuotaExceeded(ActionError):
    """Creating more would pass the tenant's plan quota (``signoff.billing``): 402 with
    the quota, its limit, the current plan and the smallest plan that lifts it. Data
    already there is kept."""

    status = 402

    def __init__(
        self, quota: str, *, limit: int, plan: str, upgrade_to: str | None, message: str
    ) -> None:
        super().__init__("quota_exceeded", message, field=quota)
        self.quota = quota
        self.limit = limit
        self.plan = plan
        self.upgrade_to = upgrade_to

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "quota": self.quota,
            "limit": self.limit,
            "plan": self.plan,
            "upgrade_to": self.upgrade_to,
        }


class PaymentRequired(ActionError):
    """Billing refuses new work (a payment failed and the grace period is over): 402."""

    status = 402


#: FAB logs an ADDON_MANAGERS entry it cannot import and carries on without it; the
#: first use of the add-on then says so instead of failing obscurely.
NOT_LOADED = (
    "the approval add-on is not loaded in this app: add "
    "'signoff.addon.ApprovalWorkflowAddonManager' to ADDON_MANAGERS (or call "
    "signoff.addon.add_addon_manager); FAB logs and skips an add-on it cannot import, "
    "so check the log for that entry"
)


class AddonLoadError(RuntimeError):
    """The approval add-on cannot run in this app; the message says why."""


class MfaError(Exception):
    """An MFA operation was refused; ``status`` is what an API answers with."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.retry_after = retry_after

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "field": self.field,
            "errors": {self.field: [self.message]} if self.field else None,
        }
        return body
