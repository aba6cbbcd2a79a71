"""Schemas of ``/api/v1/billing`` (:mod:`signoff.api.billing`)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


class PlanQuotasSchema(Schema):
    members = fields.Integer(allow_none=True, required=True)
    workflows = fields.Integer(allow_none=True, required=True)
    requests_per_month = fields.Integer(allow_none=True, required=True)
    attachment_mb = fields.Integer(allow_none=True, required=True)


class PlanChannelsSchema(Schema):
    slack = fields.Boolean(required=True)
    webhooks = fields.Boolean(required=True)


class PlanSchema(Schema):
    key = fields.String(required=True)
    name = fields.String(required=True)
    price = fields.Integer(required=True, metadata={"description": "smallest currency unit"})
    currency = fields.String(required=True)
    interval = fields.String(required=True)
    quotas = fields.Nested(PlanQuotasSchema, required=True)
    channels = fields.Nested(PlanChannelsSchema, required=True)
    api_rate = fields.String(allow_none=True, required=True)


class BillingStateSchema(Schema):
    enabled = fields.Boolean(required=True, metadata={"description": "Stripe configured"})
    plan = fields.String(required=True)
    plan_name = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": ["ok", "past_due"]})
    past_due_since = fields.DateTime(allow_none=True)
    subscription_status = fields.String(allow_none=True)
    subscribed_plan = fields.String(allow_none=True)
    cancel_at_period_end = fields.Boolean(required=True)
    current_period_end = fields.DateTime(allow_none=True)
    override_plan = fields.String(allow_none=True)
    has_customer = fields.Boolean(required=True)
    plans = fields.List(fields.Nested(PlanSchema), required=True)


class QuotaUseSchema(Schema):
    quota = fields.String(required=True)
    label = fields.String(required=True)
    used = fields.Integer(allow_none=True, required=True)
    limit = fields.Integer(
        allow_none=True, required=True, metadata={"description": "null: unlimited"}
    )


class UsageSchema(Schema):
    plan = fields.String(required=True)
    quotas = fields.List(fields.Nested(QuotaUseSchema), required=True)


class UpgradeSchema(Schema):
    plan = fields.String(required=True, validate=validate.Length(min=1, max=16))
    payment_method = fields.String(
        allow_none=True,
        validate=validate.Regexp(r"^(pm|tok)_[A-Za-z0-9_]{1,250}$"),
        metadata={
            "description": "a Stripe PaymentMethod id (pm_, Stripe.js createPaymentMethod) "
            "or card token (tok_, createToken); needed the first time"
        },
    )


class UpgradeResultSchema(Schema):
    plan = fields.String(required=True)
    subscription_status = fields.String(allow_none=True, required=True)
    outcome = fields.String(required=True)


class CancelResultSchema(Schema):
    cancel_at_period_end = fields.Boolean(required=True)
    ends = fields.DateTime(allow_none=True, required=True)


class InvoiceSchema(Schema):
    id = fields.String(required=True)
    number = fields.String(allow_none=True)
    status = fields.String(allow_none=True)
    amount_due = fields.Integer(required=True)
    amount_paid = fields.Integer(required=True)
    currency = fields.String(allow_none=True)
    created = fields.DateTime(allow_none=True)
    url = fields.String(allow_none=True)


class InvoiceListSchema(Schema):
    count = fields.Integer(required=True)
    result = fields.List(fields.Nested(InvoiceSchema), required=True)
