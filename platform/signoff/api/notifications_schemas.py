"""Schemas of ``/api/v1/notifications`` (:mod:`signoff.api.notifications`)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from signoff.api.paging import PageQuerySchema, PageSchema, result_list
from signoff.notifications.preferences import EVENT_KINDS, PERSONAL_CHANNELS

#: One boolean per event kind a member chooses (``true``: on).
ChannelPreferencesSchema: type[Schema] = Schema.from_dict(
    {kind: fields.Boolean(metadata={"description": label}) for kind, label in EVENT_KINDS.items()},
    name="ChannelPreferencesSchema",
)


class NotificationListQuerySchema(PageQuerySchema):
    unread = fields.Boolean(
        metadata={"description": "only unread (true) or only read (false) notifications"}
    )


class NotificationSchema(Schema):
    id = fields.UUID(required=True)
    kind = fields.String(
        required=True,
        metadata={"description": "an event kind, or `digest` (the daily digest of reminders)"},
    )
    label = fields.String(required=True, metadata={"description": "what the kind means"})
    title = fields.String(required=True)
    request_id = fields.UUID(allow_none=True, required=True)
    request_title = fields.String(allow_none=True, required=True)
    step_index = fields.Integer(allow_none=True, required=True)
    payload = fields.Dict(
        required=True,
        metadata={"description": "details of the kind (a digest lists its `reminders`)"},
    )
    created_at = fields.DateTime(required=True)
    read_at = fields.DateTime(allow_none=True, required=True)
    read = fields.Boolean(required=True)


class NotificationListSchema(PageSchema):
    count = fields.Integer(required=True, metadata={"description": "notifications that match"})
    unread = fields.Integer(required=True, metadata={"description": "all your unread ones"})
    result = result_list(NotificationSchema)


class UnreadCountSchema(Schema):
    unread = fields.Integer(required=True)


class MarkedReadSchema(Schema):
    marked = fields.Integer(required=True, metadata={"description": "how many were unread"})
    unread = fields.Integer(required=True)


class PreferencesSchema(Schema):
    """Every kind spelled out per channel; in-app is always on."""

    email = fields.Nested(ChannelPreferencesSchema, required=True)
    slack = fields.Nested(ChannelPreferencesSchema, required=True)
    digest_reminders = fields.Boolean(
        required=True,
        metadata={"description": "reminders by e-mail come as one daily digest"},
    )
    channels = fields.List(
        fields.String(validate=validate.OneOf(PERSONAL_CHANNELS)),
        required=True,
        metadata={"description": "the channels switched on for this platform"},
    )


class PreferencesUpdateSchema(Schema):
    """The whole set: a kind or channel left out is on."""

    email = fields.Nested(ChannelPreferencesSchema)
    slack = fields.Nested(ChannelPreferencesSchema)
    digest_reminders = fields.Boolean()
