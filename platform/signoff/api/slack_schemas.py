"""Schemas of ``/api/v1/slack`` (:mod:`signoff.api.slack`)."""

from __future__ import annotations

from marshmallow import Schema, fields

from signoff.api.paging import result_list


class SlackStatusSchema(Schema):
    connected = fields.Boolean(required=True)
    buttons = fields.Boolean(
        required=True,
        metadata={"description": "a bot token and signing secret are stored (buttons, DMs)"},
    )
    webhook = fields.Boolean(
        required=True, metadata={"description": "an incoming-webhook URL is stored"}
    )
    team_id = fields.String(allow_none=True, required=True)
    connected_by = fields.Integer(allow_none=True, required=True)
    connected_at = fields.DateTime(allow_none=True, required=True)
    interactivity_url = fields.String(
        required=True,
        metadata={"description": "the Request URL to set under Interactivity in the Slack app"},
    )


class SlackLinkSchema(Schema):
    user_id = fields.Integer(required=True)
    slack_user_id = fields.String(required=True)
    confirmed_at = fields.DateTime(allow_none=True, required=True)


class SlackLinkListSchema(Schema):
    count = fields.Integer(required=True)
    result = result_list(SlackLinkSchema)
