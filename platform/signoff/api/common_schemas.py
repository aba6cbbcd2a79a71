"""What the API's marshmallow schemas share: field types, limits and the shared schemas.

Every resource's schemas sit beside it (``<resource>_schemas.py``); the same classes
validate request bodies and query strings, shape responses (every response is dumped
through its schema, so it cannot drift from the spec) and become the OpenAPI components
of ``/api/v1/_openapi``, named by class name. marshmallow 4 rejects unknown keys by
default, which apispec publishes as ``additionalProperties: false``. Paged lists are
built on :mod:`signoff.api.paging`.

Strings that reach PostgreSQL never carry NUL or other control characters
(PostgreSQL rejects NUL in ``text`` and ``jsonb``), and free-form JSON is bounded
in depth and size: invalid input is a 422 naming the field, never a 500.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from signoff.errors import N_
from signoff.inputs import date_problem
from signoff.text import text_problem
from signoff.workflow.models import REQUEST_STATUS_CHECK

REQUEST_STATUSES = tuple(re.findall(r"'([a-z_]+)'", REQUEST_STATUS_CHECK))
WORKFLOW_KEY_RE = r"^[a-z][a-z0-9_]{0,63}$"
INT32_MAX = 2**31 - 1

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_OR_BREAK = re.compile(r"[\x00-\x1f\x7f]")
JSON_MAX_DEPTH = 32
JSON_MAX_NODES = 20_000


class Text(fields.String):
    """A string that :func:`signoff.text.text_problem` accepts: no NUL, no unpaired
    surrogate, no control characters (line breaks allowed when ``multiline``)."""

    def __init__(self, *, multiline: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.multiline = multiline

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        if text is None:
            return text
        bad = _CONTROL if self.multiline else _CONTROL_OR_BREAK
        if bad.search(text):
            raise ValidationError(N_("must not contain control characters"))
        problem = text_problem(text, multiline=self.multiline)
        if problem is not None:
            raise ValidationError(problem)
        return text


class BoundedDate(fields.Date):
    """A date between :data:`signoff.inputs.DATE_MIN` and :data:`signoff.inputs.DATE_MAX`."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        day = super()._deserialize(value, attr, data, **kwargs)
        if day is not None and (problem := date_problem(day)):
            raise ValidationError(problem)
        return day


class BoundedAwareDateTime(fields.AwareDateTime):
    """An aware date-time within the same bounds (in UTC)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        try:
            moment = super()._deserialize(value, attr, data, **kwargs)
        except OverflowError:
            raise ValidationError(N_("is out of range")) from None
        if moment is not None and (problem := date_problem(moment)):
            raise ValidationError(problem)
        return moment


def check_json(value: Any, path: str = "") -> None:
    """Free-form JSON PostgreSQL can store: no NUL, finite numbers, bounded depth/size."""
    count = 0

    def walk(node: Any, where: str, depth: int) -> None:
        nonlocal count
        count += 1
        if count > JSON_MAX_NODES:
            raise ValidationError(N_("has more than %(count)s values", count=JSON_MAX_NODES))
        if depth > JSON_MAX_DEPTH:
            raise ValidationError(
                N_(
                    "%(where)s: nested deeper than %(depth)s",
                    where=where or "value",
                    depth=JSON_MAX_DEPTH,
                )
            )
        if isinstance(node, str):
            if "\x00" in node:
                raise ValidationError(
                    N_("%(where)s: must not contain NUL characters", where=where or "value")
                )
        elif isinstance(node, float):
            if not math.isfinite(node):
                raise ValidationError(
                    N_("%(where)s: must be a finite number", where=where or "value")
                )
        elif isinstance(node, Mapping):
            for key, item in node.items():
                if not isinstance(key, str) or "\x00" in key:
                    raise ValidationError(
                        N_("%(where)s: keys must be text without NUL", where=where or "value")
                    )
                walk(item, f"{where}.{key}" if where else key, depth + 1)
        elif isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, f"{where}[{i}]", depth + 1)

    walk(value, path, 0)


class JSONObject(fields.Dict):
    """A JSON object of any content that PostgreSQL's jsonb accepts."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        result = super()._deserialize(value, attr, data, **kwargs)
        check_json(result)
        return result


def _int(**kwargs: Any) -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(min=0, max=INT32_MAX), **kwargs)


def user_id_field(**kwargs: Any) -> fields.Integer:
    """A user id: a positive 32-bit integer, never a string."""
    return fields.Integer(strict=True, validate=validate.Range(min=1, max=INT32_MAX), **kwargs)


# --- schemas of several resources -----------------------------------------------------------


class ErrorSchema(Schema):
    """Every error under /api/."""

    code = fields.String(required=True, metadata={"description": "stable machine-readable code"})
    message = fields.String(required=True)
    field = fields.String(allow_none=True, metadata={"description": "the input at fault"})
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        allow_none=True,
        metadata={"description": "every problem, by input path"},
    )
    mfa_endpoint = fields.String(
        metadata={"description": "code mfa_required only: where to verify a code, then retry"}
    )
    quota = fields.String(metadata={"description": "code quota_exceeded only: the quota"})
    limit = fields.Integer(metadata={"description": "code quota_exceeded only: the plan's limit"})
    plan = fields.String(metadata={"description": "code quota_exceeded only: the current plan"})
    upgrade_to = fields.String(
        allow_none=True,
        metadata={"description": "code quota_exceeded only: the cheapest plan that lifts it"},
    )


class ActionResultSchema(Schema):
    """What a workflow action did: the request's new status and the engine's events."""

    request_id = fields.UUID(required=True)
    status = fields.String(required=True, metadata={"enum": list(REQUEST_STATUSES)})
    events = fields.List(fields.String(), required=True)
    step = fields.Integer(metadata={"description": "the step decided (0-based)"})
    comment_id = fields.UUID()
    replayed = fields.Boolean(
        required=True, metadata={"description": "true when answered from an Idempotency-Key"}
    )


# The decision bodies of the approval-workflow endpoints; the requests resource's
# RequestChangesSchema extends RejectSchema.


class DecisionSchema(Schema):
    """Body of approve/{id}/{step} (optional)."""

    comment = Text(multiline=True, allow_none=True, validate=validate.Length(max=4000))
    on_behalf_of = user_id_field(
        allow_none=True, metadata={"description": "decide for this delegator (user id)"}
    )


class RejectSchema(DecisionSchema):
    """Body of reject/{id} (optional): the step defaults to your one active step."""

    step = _int(allow_none=True, metadata={"description": "0-based step; default: yours"})
