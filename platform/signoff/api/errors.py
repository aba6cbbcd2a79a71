"""One error shape for everything under ``/api/``.

Every error body is ``{"code", "message", "field", "errors"}``: ``code`` is a
stable machine-readable string, ``message`` a human sentence, ``field`` the
input that caused it (or ``null``) and ``errors`` every problem by input path
(``{"input_data.amount": ["must be at least 0"]}``, or ``null``).

Sources mapped here: the workflow actions' :class:`ActionError` (with stale-state
refusals answered 409), input that does not match an endpoint's schema (400,
naming the field), workflow definitions and request data that the workflow refuses
(422, naming the path), malformed bodies (400), werkzeug's HTTP errors (404, 405,
415, ...), Flask-Limiter's 429 (with ``Retry-After``), and the bodies FAB and
flask-jwt-extended write themselves (``{"message": ...}``, ``{"msg": ...}``),
which an ``after_request`` hook rewrites into the same shape.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, jsonify, request
from flask_babel import gettext as _
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt import PyJWTError
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from signoff.errors import N_, QuotaExceeded
from signoff.languages import translated, translated_errors
from signoff.workflow.actions import ActionError
from signoff.workflow.errors import ValidationError as FieldValidationError

log = logging.getLogger(__name__)

#: The default ``code`` for each HTTP status.
STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    500: "internal_error",
    501: "not_implemented",
    503: "unavailable",
}

#: Engine refusals that mean "the request moved on since you looked": answered 409.
STALE_STATE_CODES = frozenset(
    {"not_pending", "step_not_active", "already_decided", "not_changes_requested", "out_of_turn"}
)


def status_code_name(status: int) -> str:
    return STATUS_CODES.get(status, "error" if status < 500 else "internal_error")


def error_body(
    code: str,
    message: str,
    field: str | None = None,
    errors: Mapping[str, list[str]] | None = None,
) -> dict[str, Any]:
    # The code stays as it is, whatever the language; the messages are translated when
    # the catalogue has them (signoff.languages.translated).
    return {
        "code": code,
        "message": translated(message),
        "field": field,
        "errors": translated_errors(errors),
    }


def error_response(
    status: int,
    code: str | None = None,
    message: str | None = None,
    *,
    field: str | None = None,
    errors: Mapping[str, list[str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    resp = jsonify(
        error_body(
            code or status_code_name(status), message or _default_message(status), field, errors
        )
    )
    resp.status_code = status
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


#: The ``message`` for each HTTP status when the code that answered gave none of its own
#: (werkzeug's own texts are English only): marked for the catalogue, translated by
#: :func:`error_body`. The ``code`` (:data:`STATUS_CODES`) stays as it is.
STATUS_MESSAGES: dict[int, str] = {
    400: N_("Bad request"),
    401: N_("Authentication required"),
    403: N_("Forbidden"),
    404: N_("Not found"),
    405: N_("Method not allowed"),
    406: N_("Not acceptable"),
    408: N_("The request took too long"),
    409: N_("Conflict"),
    410: N_("No longer available"),
    411: N_("A Content-Length header is required"),
    412: N_("Precondition failed"),
    413: N_("The request is too large"),
    414: N_("The URL is too long"),
    415: N_("Unsupported media type"),
    416: N_("Range not satisfiable"),
    417: N_("Expectation failed"),
    422: N_("Unprocessable request"),
    423: N_("Locked"),
    428: N_("The request must be conditional"),
    429: N_("Too many requests"),
    431: N_("The request headers are too large"),
    451: N_("Unavailable for legal reasons"),
    500: N_("Internal error"),
    501: N_("Not implemented"),
    502: N_("Bad gateway"),
    503: N_("Service unavailable"),
    504: N_("Gateway timeout"),
    505: N_("HTTP version not supported"),
}


def _default_message(status: int) -> str:
    return STATUS_MESSAGES.get(status, N_("Error"))


def http_message(exc: HTTPException) -> str:
    """What ``exc`` says to a person: its own description when the code that raised it
    gave one (ours are marked for the catalogue), else our message for its status, never
    werkzeug's English default text."""
    description = exc.description
    if description and description != type(exc).description:
        return description  # a Message (N_ with values) keeps its msgid: no str()
    return _default_message(exc.code or 500)


def flatten_messages(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested ``messages`` as ``{"a.b[0]": ["..."]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            if isinstance(key, int):
                path = f"{prefix}[{key}]"
            elif key == "_schema":
                path = prefix or "body"
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            for p, msgs in flatten_messages(value, path).items():
                out.setdefault(p, []).extend(msgs)
    elif isinstance(messages, list | tuple):
        if all(isinstance(m, str) for m in messages):
            out.setdefault(prefix or "body", []).extend(messages)
        else:
            for item in messages:
                for p, msgs in flatten_messages(item, prefix).items():
                    out.setdefault(p, []).extend(msgs)
    elif messages is not None:
        out.setdefault(prefix or "body", []).append(str(messages))
    return out


def _first(errors: Mapping[str, list[str]]) -> tuple[str | None, str]:
    for path, msgs in errors.items():
        return path, f"{path}: {translated(msgs[0])}" if msgs else path
    return None, N_("Invalid input")


def validation_response(messages: Any, *, status: int = 400, code: str = "invalid") -> Response:
    errors = flatten_messages(messages)
    field, message = _first(errors)
    return error_response(status, code, message, field=field, errors=errors)


def from_marshmallow(exc: ValidationError) -> Response:
    return validation_response(exc.messages)


def from_field_errors(exc: FieldValidationError, *, code: str = "invalid") -> Response:
    errors = exc.as_dict()
    field, _unused = _first(errors)
    # Each message translated before they are joined (str(exc) joins the English ones).
    message = "; ".join(
        f"{e.path}: {translated(e.message)}" if e.path else translated(e.message)
        for e in exc.errors
    )
    return error_response(422, code, message or str(exc), field=field, errors=errors)


def from_action_error(exc: ActionError) -> Response:
    status = exc.status
    if status == 422 and exc.code in STALE_STATE_CODES and exc.field != "step":
        # The request moved on (decided, withdrawn, another step): retrying the
        # same call cannot succeed, re-read the request first.
        status = 409
    field = exc.field
    if field is None and exc.errors:
        field = next(iter(exc.errors))
    headers: dict[str, str] = {}
    retry_after = getattr(exc, "retry_after", None)
    if status == 429:
        # The action layer's per-user decision budget (signoff.security.ratelimit).
        headers["Retry-After"] = str(max(1, int(retry_after or 1)))
    resp = error_response(
        status, exc.code, exc.message, field=field, errors=exc.errors, headers=headers
    )
    if isinstance(exc, QuotaExceeded):
        # The body names the quota and the plan that lifts it (signoff.billing).
        resp.set_data(json.dumps({**(resp.get_json() or {}), **exc.to_dict()}))
    return resp


# --- app-wide handlers ------------------------------------------------------------------


def _is_api() -> bool:
    return request.path.startswith("/api/")


def _retry_after_seconds() -> int | None:
    from signoff.extensions import limiter

    try:
        current = limiter.current_limit
    except Exception:
        return None
    if current is None:
        return None
    return max(1, math.ceil(current.reset_at - time.time()))


def handle_http_exception(exc: HTTPException) -> Any:
    if not _is_api():
        return exc
    status = exc.code or 500
    headers: dict[str, str] = {}
    message = http_message(exc)
    if status == 429:
        retry = _retry_after_seconds()
        headers["Retry-After"] = str(retry or 1)
        message = _("Rate limit exceeded (%(limit)s); retry later", limit=exc.description)
    if status == 405 and exc.get_response().headers.get("Allow"):
        headers["Allow"] = exc.get_response().headers["Allow"]
    return error_response(status, status_code_name(status), message, headers=headers)


def handle_unexpected(exc: Exception) -> Response:
    """The last resort of an API blueprint: log, answer 500 in the error shape."""
    if isinstance(exc, HTTPException):
        return handle_http_exception(exc)
    if isinstance(exc, JWTExtendedException | PyJWTError):
        # FAB's @protect on a ModelRestApi verifies a JWT even when the call came with
        # an API key (see signoff.api.base): that is "no valid token", not a crash.
        return error_response(401, "unauthorized", N_("A valid tenant access token is required"))
    log.exception("unhandled error in %s %s", request.method, request.path)
    return error_response(500, "internal_error", N_("Internal error"))


def _rewrite(payload: Any, status: int) -> dict[str, Any] | None:
    """FAB's ``{"message": ...}`` and flask-jwt-extended's ``{"msg": ...}`` as our shape."""
    if not isinstance(payload, Mapping):
        return error_body(status_code_name(status), _default_message(status))
    if isinstance(payload.get("code"), str) and isinstance(payload.get("message"), str):
        if "field" in payload and "errors" in payload:
            return None
        body = dict(payload)
        body.setdefault("field", None)
        body.setdefault("errors", None)
        return body
    raw = payload.get("message", payload.get("msg"))
    code = status_code_name(status)
    if status == 422 and "msg" in payload:
        # flask-jwt-extended answers 422 for a malformed token: it is an auth failure.
        return error_body("unauthorized", str(raw or N_("Invalid token")))
    if isinstance(raw, Mapping | list):
        errors = flatten_messages(raw)
        field, message = _first(errors)
        return error_body("invalid" if status in (400, 422) else code, message, field, errors)
    return error_body(code, str(raw) if raw else _default_message(status))


def normalize_error_body(response: Response) -> Response:
    """After each ``/api/`` request: any JSON error body takes the one error shape."""
    if response.status_code < 400 or not _is_api() or response.direct_passthrough:
        return response
    if response.mimetype != "application/json":
        if response.status_code >= 400 and response.mimetype in ("text/html", "text/plain"):
            replacement = error_response(response.status_code)
            for key in ("Retry-After", "Allow", "WWW-Authenticate"):
                if key in response.headers:
                    replacement.headers[key] = response.headers[key]
            for key, value in response.headers.items():
                if key.startswith("X-RateLimit"):
                    replacement.headers[key] = value
            return replacement
        return response
    try:
        payload = json.loads(response.get_data(as_text=True) or "null")
    except ValueError:
        payload = None
    status = response.status_code
    if status == 422 and isinstance(payload, Mapping) and "msg" in payload:
        response.status_code = status = 401
    body = _rewrite(payload, status)
    if body is not None:
        response.set_data(json.dumps(body))
        response.mimetype = "application/json"
    if status == 429 and "Retry-After" not in response.headers:
        response.headers["Retry-After"] = str(_retry_after_seconds() or 1)
    return response


def install(app: Flask) -> None:
    """Register the handlers once per app."""
    if app.extensions.get("signoff_api_errors"):
        return
    app.extensions["signoff_api_errors"] = True
    app.register_error_handler(HTTPException, handle_http_exception)
    app.after_request(normalize_error_body)
