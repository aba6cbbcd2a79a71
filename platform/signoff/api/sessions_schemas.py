"""Schemas of ``/api/v1/security/sessions`` (:mod:`signoff.api.sessions`)."""

from __future__ import annotations

from marshmallow import Schema, fields


class SessionSchema(Schema):
    id = fields.UUID(required=True)
    kind = fields.String(
        required=True, metadata={"description": "web (a browser) or api (a token pair)"}
    )
    tenant_id = fields.UUID(
        allow_none=True, metadata={"description": "the tenant an API session's tokens name"}
    )
    created_at = fields.DateTime(required=True)
    last_seen_at = fields.DateTime(required=True)
    expires_at = fields.DateTime(
        required=True, metadata={"description": "the absolute end; it ends sooner when idle"}
    )
    user_agent = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    current = fields.Boolean(
        required=True, metadata={"description": "the session of the calling token"}
    )


class SessionListSchema(Schema):
    result = fields.List(fields.Nested(SessionSchema), required=True)


class SessionsEndedSchema(Schema):
    ended = fields.Integer(required=True, metadata={"description": "how many sessions ended"})
