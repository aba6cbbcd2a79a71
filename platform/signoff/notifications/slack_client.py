"""Slack's Web API and incoming webhooks, through the SSRF-guarded HTTP of
:mod:`signoff.notifications.http`.

:class:`GuardedWebClient` is ``slack_sdk.WebClient`` (its request building, response
parsing and ``SlackApiError``) whose transport is :func:`signoff.notifications.http.post`:
the address is resolved once, checked against the outbound policy
(``SIGNOFF_OUTBOUND_ALLOW``) and pinned; no redirect is followed; timeouts and a size cap
apply. slack_sdk's own retries are off: the dispatcher retries with backoff. The base
URL is ``SIGNOFF_SLACK_API_URL`` (tests point it at a receiver on 127.0.0.1).

Every failure becomes :class:`SlackCallFailed`, which says whether retrying can help
(``invalid_auth``, ``account_inactive``, a revoked token, a refused address cannot).
"""

from __future__ import annotations

import email.message
import json
from typing import Any
from urllib.request import Request

from flask import current_app
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from signoff.errors import N_
from signoff.languages import add_templates
from signoff.notifications import http

#: Slack error codes that the same call cannot overcome by being retried.
PERMANENT_ERRORS = frozenset(
    {
        "invalid_auth",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "not_authed",
        "missing_scope",
        "no_permission",
        "channel_not_found",
        "user_not_found",
        "user_disabled",
        "is_archived",
        "cannot_dm_bot",
        "invalid_blocks",
        "invalid_arguments",
        # incoming webhooks answer with text codes
        "invalid_token",
        "no_service",
        "no_team",
        "team_disabled",
        "channel_is_archived",
        "action_prohibited",
    }
)
#: Slack answers within 3 s of a click; the rest of the budget is ours.
RESPONSE_URL_TIMEOUT = 2.0

#: A failed call as its delivery row stores it (``last_error``): the problem inside is
#: shown in the reader's language (signoff.languages.translated).
add_templates(N_("Slack %(method)s: %(problem)s"))


class SlackCallFailed(Exception):
    """A call to Slack failed: ``code`` is Slack's error (or a transport reason)."""

    def __init__(
        self, code: str, message: str, *, status: int | None = None, retryable: bool = True
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.retryable = retryable


class GuardedWebClient(WebClient):
    """``slack_sdk.WebClient`` whose HTTP goes through :func:`http.post`."""

    def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
        data = req.data if isinstance(req.data, bytes) else b""
        headers = {k: str(v) for k, v in req.header_items()}
        resp = http.post(
            url,
            data,
            headers,
            connect_timeout=min(5.0, float(self.timeout)),
            read_timeout=float(self.timeout),
            deadline=float(self.timeout) * 2,
        )
        message = email.message.Message()
        for key, value in resp.headers.items():
            message[key] = value
        charset = message.get_content_charset() or "utf-8"
        return {
            "status": resp.status,
            "headers": message,
            "body": resp.body.decode(charset, errors="replace"),
        }


def api_url() -> str:
    return str(current_app.config.get("SIGNOFF_SLACK_API_URL") or "https://slack.com/api/")


def web_client(token: str, *, timeout: int = 10) -> GuardedWebClient:
    return GuardedWebClient(token=token, base_url=api_url(), timeout=timeout, retry_handlers=[])


def call(client: WebClient, method: str, **kwargs: Any) -> dict[str, Any]:
    """``client.api_call(method, json=kwargs)``: Slack's answer, or :class:`SlackCallFailed`."""
    try:
        resp = client.api_call(method, json=kwargs)
    except SlackApiError as exc:
        status = getattr(exc.response, "status_code", None)
        data = getattr(exc.response, "data", None)
        code = str(data.get("error") or "error") if isinstance(data, dict) else "error"
        if status == 429:
            code = "ratelimited"
        raise SlackCallFailed(
            code,
            f"Slack {method}: {code} (HTTP {status})",
            status=status,
            retryable=code not in PERMANENT_ERRORS and status not in (401, 403, 404),
        ) from None
    except http.OutboundError as exc:
        raise SlackCallFailed(
            "outbound",
            N_("Slack %(method)s: %(problem)s", method=method, problem=exc.message),
            retryable=not exc.permanent,
        ) from None
    except SlackClientError as exc:
        raise SlackCallFailed("client", f"Slack {method}: {exc}") from None
    data = resp.data
    return dict(data) if isinstance(data, dict) else {}


def post_to_url(url: str, payload: dict[str, Any], *, timeout: float = 10.0) -> int:
    """POST a message to an incoming webhook or a ``response_url``; the HTTP status.

    Slack answers ``ok`` with 200, and a text code (``invalid_token``, ``no_service``)
    with a 4xx.
    """
    try:
        resp = http.post(
            url,
            json.dumps(payload).encode(),
            {"Content-Type": "application/json; charset=utf-8"},
            connect_timeout=min(5.0, timeout),
            read_timeout=timeout,
            deadline=timeout * 2,
            max_bytes=4096,
        )
    except http.OutboundError as exc:
        raise SlackCallFailed(
            "outbound",
            N_("Slack %(method)s: %(problem)s", method="webhook", problem=exc.message),
            retryable=not exc.permanent,
        ) from None
    if resp.status == 200:
        return resp.status
    code = resp.body.decode("utf-8", errors="replace").strip()[:80] or f"http_{resp.status}"
    retryable = resp.status == 429 or resp.status >= 500
    if code in PERMANENT_ERRORS:
        retryable = False
    raise SlackCallFailed(
        code, f"Slack webhook: {code} (HTTP {resp.status})", status=resp.status, retryable=retryable
    )
