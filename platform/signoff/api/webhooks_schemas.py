"""Schemas of ``/api/v1/webhooks`` (:mod:`signoff.api.webhooks`)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from signoff.api.common_schemas import Text
from signoff.api.paging import PageQuerySchema, PageSchema, result_list
from signoff.notifications.models import DELIVERY_STATUSES
from signoff.notifications.webhooks import EVENT_TYPES

_URL = {"description": "http or https; must resolve to an address outbound requests may reach"}
_TYPES = {"description": "event types to receive; empty: every type"}


class WebhookCreateSchema(Schema):
    url = Text(required=True, validate=validate.Length(min=1, max=2000), metadata=_URL)
    event_types = fields.List(
        fields.String(validate=validate.OneOf(EVENT_TYPES)),
        validate=validate.Length(max=len(EVENT_TYPES)),
        load_default=list,
        metadata=_TYPES,
    )
    description = Text(allow_none=True, validate=validate.Length(max=200))
    active = fields.Boolean(load_default=True)


class WebhookUpdateSchema(Schema):
    url = Text(validate=validate.Length(min=1, max=2000), metadata=_URL)
    event_types = fields.List(
        fields.String(validate=validate.OneOf(EVENT_TYPES)),
        validate=validate.Length(max=len(EVENT_TYPES)),
        metadata=_TYPES,
    )
    description = Text(allow_none=True, validate=validate.Length(max=200))
    active = fields.Boolean()


class WebhookSchema(Schema):
    id = fields.UUID(required=True)
    url = fields.String(required=True)
    description = fields.String(allow_none=True)
    event_types = fields.List(fields.String(), required=True, metadata=_TYPES)
    active = fields.Boolean(required=True)
    created_by = fields.Integer(allow_none=True)
    created_at = fields.DateTime(required=True)


class WebhookCreatedSchema(WebhookSchema):
    secret = fields.String(
        required=True,
        metadata={"description": "the signing secret (whsec_...), shown once: store it now"},
    )


class WebhookSecretSchema(Schema):
    id = fields.UUID(required=True)
    secret = fields.String(
        required=True,
        metadata={"description": "the new signing secret, shown once; the old one is void"},
    )


class WebhookListSchema(PageSchema):
    result = result_list(WebhookSchema)


class WebhookEventTypesSchema(Schema):
    event_types = fields.List(fields.String(), required=True)


class WebhookDeliveryQuerySchema(PageQuerySchema):
    status = fields.String(validate=validate.OneOf(DELIVERY_STATUSES))


class WebhookDeliverySchema(Schema):
    id = fields.UUID(required=True, metadata={"description": "also the webhook-id header"})
    endpoint_id = fields.UUID(required=True)
    event_type = fields.String(required=True)
    request_id = fields.UUID(allow_none=True)
    status = fields.String(required=True, metadata={"description": "pending, sent, dead, skipped"})
    attempts = fields.Integer(required=True)
    max_attempts = fields.Integer(required=True)
    response_code = fields.Integer(allow_none=True)
    latency_ms = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    next_attempt_at = fields.DateTime(allow_none=True)
    delivered_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime(required=True)


class WebhookDeliveryListSchema(PageSchema):
    result = result_list(WebhookDeliverySchema)
