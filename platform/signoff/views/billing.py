"""The Billing page for tenant admins (``/t/<slug>/admin/billing/``): the plan, usage
against each quota (bars), upgrade and downgrade, the payment method, invoices from
Stripe, cancel, and the Stripe events this tenant's webhook processed.

The card is entered with Stripe.js (Elements) from ``static/billing.js``; the page
posts only the PaymentMethod (or card token) id Stripe.js returns, never a card
number. The rules live in :mod:`signoff.billing.service`.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, g, redirect, request, url_for
from flask_appbuilder import AppBuilder, expose
from flask_appbuilder.security.decorators import no_cache
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from signoff.billing import plans, quotas, service
from signoff.billing.stripe_api import js_url
from signoff.errors import ActionError, Invalid
from signoff.extensions import db
from signoff.languages import translated
from signoff.roles import ADMIN_ROLE
from signoff.views.common import SignoffView, tenant_nav
from signoff.views.tenant_base import TenantScoped


class BillingAdminView(TenantScoped, SignoffView):
    route_base = "/t/<tenant_slug>/admin/billing"
    default_view = "index"
    tenant_roles = (ADMIN_ROLE,)

    @expose("/")
    @no_cache
    def index(self) -> str:
        session = db.session
        state = service.state(session())
        usage = quotas.usage(session())
        invoices: list[dict[str, Any]] = []
        card = None
        stripe_error = None
        if state["enabled"]:
            try:
                invoices = service.invoices(session())
                card = service.payment_method(session())
            except ActionError as exc:
                stripe_error = translated(exc.message)
        return self.render(
            "signoff/admin_billing.html",
            nav=tenant_nav(session),
            state=state,
            usage=usage,
            plans=plans.all_plans(),
            invoices=invoices,
            card=card,
            stripe_error=stripe_error,
            events=service.recent_events(session()),
            publishable_key=current_app.config.get("SIGNOFF_STRIPE_PUBLISHABLE_KEY"),
            stripe_js=js_url(),
        )

    @expose("/upgrade", methods=["POST"])
    def upgrade(self) -> Response:
        plan = (request.form.get("plan") or "").strip()
        token = (request.form.get("payment_method") or "").strip() or None
        session = db.session()
        session.commit()  # end the read transaction before calling Stripe
        try:
            wanted = plans.find_plan(plan)
            if wanted is None or not wanted.paid:
                raise Invalid("unknown_plan", "Choose one of the paid plans", field="plan")
            service.ensure_customer(session, email=str(g.user.email), actor_id=int(g.user.id))
            session.commit()
            result = service.upgrade(
                session,
                plan_key=plan,
                payment_method=token,
                actor_id=int(g.user.id),
                email=str(g.user.email),
            )
            session.commit()
        except ActionError as exc:
            session.rollback()
            flash(translated(exc.message), "danger")
        else:
            flash(
                _("You are now on the %(plan)s plan.", plan=plans.get_plan(result["plan"]).name),
                "success",
            )
        return redirect(url_for("BillingAdminView.index"))

    @expose("/cancel", methods=["POST"])
    def cancel(self) -> Response:
        session = db.session()
        session.commit()
        try:
            service.cancel(session, actor_id=int(g.user.id))
            session.commit()
        except ActionError as exc:
            session.rollback()
            flash(translated(exc.message), "danger")
        else:
            flash(_("Cancelled: your plan stays until the end of the period."), "success")
        return redirect(url_for("BillingAdminView.index"))


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(BillingAdminView())
