"""The door every request passes first: bounded, well-formed input or a 4xx naming it.

Installed by ``create_app`` ahead of every other ``before_request`` hook (the rate
limits and FAB's login read bodies too), for pages and APIs alike:

- a body larger than ``SIGNOFF_MAX_CONTENT_LENGTH`` (Flask's ``MAX_CONTENT_LENGTH``) is
  413 naming ``body``;
- a JSON body is parsed once by :func:`signoff.inputs.parse_json` (strict UTF-8, at most
  :data:`signoff.inputs.MAX_JSON_DEPTH` levels, no NUL or unpaired surrogate in any key or
  string) and cached on the request, so ``request.get_json()`` everywhere (FAB's login,
  its model APIs, ours) sees only the checked value; otherwise 400 naming the field;
- a URL-encoded form body and query parameters are strict UTF-8 text without NUL or
  other control characters; a path parameter with a NUL is 400 naming it under ``/api/``
  and 404 on pages (nothing has such a name).

What each field may hold beyond that (length, line breaks) is the endpoint's schema,
built on :func:`signoff.text.check_text`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from io import BytesIO
from typing import Any

from flask import Flask, Response, current_app, g, request
from markupsafe import escape
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import RequestEntityTooLarge

from signoff.api import errors
from signoff.inputs import BadInput, check_form, parse_json
from signoff.text import text_problem

_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_BAD_IN_PATH = re.compile("[\x00\ud800-\udfff]")


def _forget_body() -> None:
    """Hooks that still run on a refused request (the login limits' ``after_request``)
    must never parse its body: they see an empty form and no JSON."""
    real = request._get_current_object()  # type: ignore[attr-defined]
    real._cached_json = (None, None)
    real.__dict__.update(form=ImmutableMultiDict(), files=ImmutableMultiDict(), stream=BytesIO())


def _refuse(status: int, field: str, message: str) -> Response:
    _forget_body()
    if request.path.startswith("/api/"):
        # The body as a whole (malformed, too deep, not UTF-8) is a bad request; a field in
        # it (a NUL, a surrogate) is invalid, as the schemas say of fields.
        code = {413: "too_large", 404: "not_found"}.get(status) or (
            "bad_request" if field == "body" else "invalid"
        )
        return errors.error_response(
            status, code, f"{field}: {message}", field=field, errors={field: [message]}
        )
    page = f"<!doctype html><title>{status}</title><p>{escape(field)}: {escape(message)}</p>"
    return Response(page, status=status, mimetype="text/html")


def _check_url() -> Response | None:
    # Path parameters: a NUL (or an unpaired surrogate) can name nothing, and PostgreSQL
    # cannot even compare it. Other characters are each endpoint's business (a workflow
    # key's pattern, a uuid): they answer 404 or 422 naming the parameter themselves.
    values = dict(request.view_args or {})
    if getattr(g, "tenant_slug", None):
        values["tenant_slug"] = g.tenant_slug
    for name, value in values.items():
        if isinstance(value, str) and _BAD_IN_PATH.search(value):
            if request.path.startswith("/api/"):
                return _refuse(400, name, "must not contain a NUL or an unpaired surrogate")
            return _refuse(404, name, "not found")
    for name, value in request.args.items(multi=True):
        for text in (name, value):
            problem = text_problem(text, multiline=True)
            if problem is not None:
                return _refuse(400, name if text is value else "query", problem)
    return None


def _check_body(limit: int | None) -> Response | None:
    length = request.content_length
    if limit is not None and length is not None and length > limit:
        return _refuse(413, "body", f"is larger than {limit} bytes")
    if request.method not in _WITH_BODY:
        return None
    too_large = _refuse_size(limit)
    try:
        if request.is_json:
            raw = request.get_data(cache=True)
            if length is None and limit is not None and len(raw) >= limit:
                return too_large()  # chunked: werkzeug stopped reading at the cap
            if raw:
                value = parse_json(raw)
                request._cached_json = (value, value)  # what get_json() returns from now on
        elif request.mimetype == "application/x-www-form-urlencoded":
            raw = request.get_data(cache=True)
            if length is None and limit is not None and len(raw) >= limit:
                return too_large()
            check_form(raw)
            _ = request.form  # parse now: a body past werkzeug's form limits is 413 here
        elif request.mimetype == "multipart/form-data":
            for name, value in request.form.items(multi=True):
                problem = text_problem(name, multiline=True) or text_problem(value, multiline=True)
                if problem is not None:
                    return _refuse(400, name, problem)
    except BadInput as exc:
        return _refuse(exc.status, exc.field, exc.message)
    except RequestEntityTooLarge:
        return too_large()
    return None


def _refuse_size(limit: int | None) -> Callable[[], Response]:
    return lambda: _refuse(413, "body", f"is larger than {limit} bytes")


def own_body(f: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a view that reads its raw body itself, under a smaller cap of its own (a
    signed webhook must check the signature over the exact bytes before anything parses
    them, and must not read more than its cap from an unauthenticated sender)."""
    f._signoff_own_body = True  # type: ignore[attr-defined]
    return f


#: What an upload's body may hold beyond the file itself (the other fields, the
#: multipart framing).
UPLOAD_OVERHEAD = 64 * 1024


def upload_body(f: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a view that takes a file upload: its body may be as large as one attachment
    (``SIGNOFF_ATTACHMENT_MAX_BYTES``) plus :data:`UPLOAD_OVERHEAD`, even when that is
    more than ``SIGNOFF_MAX_CONTENT_LENGTH``."""
    f._signoff_upload = True  # type: ignore[attr-defined]
    return f


def guard() -> Response | None:
    view = current_app.view_functions.get(request.endpoint or "")
    if getattr(view, "_signoff_own_body", False):
        return _check_url()
    if getattr(view, "_signoff_upload", False):
        wanted = int(current_app.config["SIGNOFF_ATTACHMENT_MAX_BYTES"]) + UPLOAD_OVERHEAD
        request.max_content_length = max(wanted, request.max_content_length or 0)
    limit = request.max_content_length
    return _check_url() or _check_body(limit)


def install(app: Flask) -> None:
    """Set ``MAX_CONTENT_LENGTH`` and put :func:`guard` first among the app's hooks."""
    app.config["MAX_CONTENT_LENGTH"] = int(app.config["SIGNOFF_MAX_CONTENT_LENGTH"])
    app.before_request_funcs.setdefault(None, []).insert(0, guard)
