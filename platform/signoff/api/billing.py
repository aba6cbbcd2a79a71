"""Billing for tenant admins (``/api/v1/billing``): plan, usage, upgrade with a payment
method id, cancel, invoices; and Stripe's webhook (``POST /billing/stripe/webhook``).

The webhook is called by Stripe, not a signed-in user: no session, no CSRF token, no
tenant in its URL. It trusts only Stripe's signature and binds the tenant whose stored
customer id the event names (:mod:`signoff.billing.webhooks`). It is left out of the
OpenAPI document (its own ``version``).
"""

from __future__ import annotations

from flask import current_app, g, jsonify, request
from flask_appbuilder.api import BaseApi, expose
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from signoff.api.base import TenantBaseApi, endpoint, json_body, openapi, transaction
from signoff.api.billing_schemas import (
    BillingStateSchema,
    CancelResultSchema,
    InvoiceListSchema,
    InvoiceSchema,
    PlanChannelsSchema,
    PlanQuotasSchema,
    PlanSchema,
    QuotaUseSchema,
    UpgradeResultSchema,
    UpgradeSchema,
    UsageSchema,
)
from signoff.api.common_schemas import ErrorSchema
from signoff.api.input_guard import own_body
from signoff.billing import plans, quotas, service, webhooks
from signoff.errors import Invalid, NotFound
from signoff.extensions import db
from signoff.roles import ADMIN_ROLE


def _require_billing() -> None:
    if not plans.enabled():
        raise NotFound("billing_off", "Billing is not enabled on this installation")


class BillingApi(TenantBaseApi):
    resource_name = "billing"
    openapi_spec_tag = "Billing"
    openapi_spec_component_schemas = (
        ErrorSchema,
        PlanQuotasSchema,
        PlanChannelsSchema,
        PlanSchema,
        BillingStateSchema,
        QuotaUseSchema,
        UsageSchema,
        UpgradeSchema,
        UpgradeResultSchema,
        CancelResultSchema,
        InvoiceSchema,
        InvoiceListSchema,
    )
    tenant_roles = (ADMIN_ROLE,)

    @expose("/", methods=("GET",))
    @endpoint("read", roles=(ADMIN_ROLE,))
    @openapi(
        "The tenant's plan and billing status (tenant Admin)",
        description="With the plans on offer. Works with billing off (enabled false).",
        ok={200: BillingStateSchema},
        errors=(401, 403),
    )
    def get(self) -> Response:
        body = service.state(db.session())
        body["plans"] = [p.to_dict() for p in plans.all_plans()]
        return self.response(200, **BillingStateSchema().dump(body))

    @expose("/usage", methods=("GET",))
    @endpoint("read", roles=(ADMIN_ROLE,))
    @openapi(
        "Use of each quota of the tenant's plan (tenant Admin)",
        ok={200: UsageSchema},
        errors=(401, 403),
    )
    def usage(self) -> Response:
        return self.response(200, **UsageSchema().dump(quotas.usage(db.session())))

    @expose("/upgrade", methods=("POST",))
    @endpoint("write", roles=(ADMIN_ROLE,))
    @openapi(
        "Subscribe to a plan, or move the subscription to another (tenant Admin)",
        description=(
            "Creates the tenant's Stripe customer the first time, attaches the payment "
            "method (a PaymentMethod id from Stripe.js) and subscribes. A declined card "
            "is 402; billing off is 404; Stripe unreachable is 503."
        ),
        body=UpgradeSchema,
        body_required=True,
        ok={200: UpgradeResultSchema},
        errors=(400, 401, 402, 403, 404, 409, 422, 503),
    )
    def upgrade(self) -> Response:
        _require_billing()
        data = json_body(UpgradeSchema(), required=True)
        wanted = plans.find_plan(data["plan"])
        if wanted is None or not wanted.paid:
            raise Invalid("unknown_plan", "Choose one of the paid plans", field="plan")
        with transaction() as session:
            service.ensure_customer(session, email=str(g.user.email), actor_id=int(g.user.id))
        with transaction() as session:
            result = service.upgrade(
                session,
                plan_key=data["plan"],
                payment_method=data.get("payment_method"),
                actor_id=int(g.user.id),
                email=str(g.user.email),
            )
        return self.response(200, **UpgradeResultSchema().dump(result))

    @expose("/cancel", methods=("POST",))
    @endpoint("write", roles=(ADMIN_ROLE,))
    @openapi(
        "Cancel the subscription at the end of the period (tenant Admin)",
        description="The plan stays until the period ends; then the tenant is on the free plan.",
        ok={200: CancelResultSchema},
        errors=(401, 403, 404, 409, 503),
    )
    def cancel(self) -> Response:
        _require_billing()
        with transaction() as session:
            result = service.cancel(session, actor_id=int(g.user.id))
        return self.response(200, **CancelResultSchema().dump(result))

    @expose("/invoices", methods=("GET",))
    @endpoint("read", roles=(ADMIN_ROLE,))
    @openapi(
        "The tenant's invoices, from Stripe (tenant Admin)",
        ok={200: InvoiceListSchema},
        errors=(401, 403, 404, 503),
    )
    def invoices(self) -> Response:
        _require_billing()
        rows = service.invoices(db.session())
        return self.response(200, **InvoiceListSchema().dump({"count": len(rows), "result": rows}))


class StripeWebhookApi(BaseApi):
    """``POST /billing/stripe/webhook``: Stripe's events (signed by Stripe)."""

    route_base = "/billing"
    version = "billing"  # not part of /api/v1/_openapi
    resource_name = "stripe-webhook"
    openapi_spec_tag = "Billing"

    @expose("/stripe/webhook", methods=("POST",))
    @own_body
    def webhook(self) -> Response:
        """Stripe webhook, signed by Stripe (not part of the published API document)."""
        request.max_content_length = webhooks.MAX_BODY
        try:
            body = request.get_data(cache=True)
        except RequestEntityTooLarge:
            return Response("", status=413)
        answer = webhooks.handle(db.session, body, request.headers.get("Stripe-Signature"))
        if answer.status != 200:
            current_app.logger.info("Stripe webhook refused: %s", answer.code)
        resp = jsonify(answer.body())
        resp.status_code = answer.status
        return resp
