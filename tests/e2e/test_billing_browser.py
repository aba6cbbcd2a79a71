"""The Billing page in a real browser (CSRF on), against localstripe: a free tenant at
its request quota subscribes to Team with a card typed into Stripe.js Elements
(localstripe serves its Stripe.js replacement), localstripe's signed webhook arrives,
and the page and the API show the raised quota. Screenshots land in test-artifacts/."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import app_config
from tests.e2e.conftest import DESKTOP, signed_in
from tests.fixtures.tenants import api_token, auth, fresh_client
from tests.fixtures.workflows import spec_expense
from tests.integration.billing.conftest import (  # noqa: F401 (the fixture)
    PUBLISHABLE_KEY,
    SECRET_KEY,
    TEST_PLANS,
    WEBHOOK_SECRET,
    BillingServer,
    LocalStripe,
    localstripe,
)
from tests.integration.billing.helpers import state, wait_event
from tests.integration.workflow.conftest import in_tenant, save

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def billing_live(
    database: Any,
    redis_url: str,
    redis_prefix: str,
    app: Any,
    localstripe: LocalStripe,  # noqa: F811 (the fixture imported above)
) -> Iterator[BillingServer]:
    from werkzeug.serving import make_server

    from signoff.app import create_app
    from signoff.billing.stripe_api import sync_plans

    live = create_app(
        app_config(
            database,
            redis_url,
            f"{redis_prefix}e2e-billing-{uuid.uuid4().hex[:6]}:",
            WTF_CSRF_ENABLED=True,
            TESTING=False,
            AUTH_RATE_LIMIT="1000 per 20 second",
            SIGNOFF_STRIPE_SECRET_KEY=SECRET_KEY,
            SIGNOFF_STRIPE_PUBLISHABLE_KEY=PUBLISHABLE_KEY,
            SIGNOFF_STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
            SIGNOFF_STRIPE_API_BASE=localstripe.url,
            SIGNOFF_BILLING_PLANS=TEST_PLANS,
        )
    )
    with live.app_context():
        sync_plans()
    server = make_server("127.0.0.1", 0, live, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, name="e2e-billing", daemon=True)
    thread.start()
    localstripe.post(
        "/_config/webhooks/signoff-e2e",
        {"url": f"{url}/billing/stripe/webhook", "secret": WEBHOOK_SECRET},
    )
    try:
        yield BillingServer(url=url, app=live, stripe=localstripe)
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_upgrade_in_the_browser_through_the_webhook_raises_the_quota(
    browser: Any, billing_live: BillingServer, artifacts: Any, tenant_factory: Any, app: Any
) -> None:
    from sqlalchemy import text

    from signoff.billing.quotas import this_month

    tenant = tenant_factory(plan="free")
    save(app, tenant, "expense_approval", spec_expense())

    with in_tenant(billing_live.app, tenant) as s:
        s.execute(
            text("INSERT INTO billing_usage (period, requests) VALUES (:p, 3)"),
            {"p": this_month()},
        )
        s.commit()
    client = fresh_client(billing_live.app)
    token = api_token(client, tenant.username("alice"), tenant.slug)
    body = {"workflow": "expense_approval", "title": "x", "input_data": {"amount": 50}}
    refused = client.post("/api/v1/requests/", json=body, headers=auth(token))
    assert refused.status_code == 402 and refused.get_json()["upgrade_to"] == "team"

    path = f"/t/{tenant.slug}/admin/billing/"
    page = signed_in(browser, billing_live.url, tenant.username("admin"), path, DESKTOP)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    assert page.inner_text("[data-testid=current-plan]") == "Free"
    assert "3 / 3" in page.inner_text("[data-testid=usage-bars]")
    # localstripe's Stripe.js replacement mounts its card inputs in #card-element.
    page.wait_for_selector("#card-element input[placeholder=number]")
    page.screenshot(path=str(artifacts / "billing-free-desktop.png"), full_page=True)
    page.fill("#card-element input[placeholder=number]", "4242424242424242")
    page.fill("#card-element input[placeholder=exp_month]", "12")
    page.fill("#card-element input[placeholder=exp_year]", "30")
    page.fill("#card-element input[placeholder=cvc]", "123")
    page.fill("#card-element input[placeholder=postal_code]", "75001")
    page.check("input[name=plan][value=team]")
    page.click("[data-testid=upgrade]")
    page.wait_for_selector("text=You are now on the Team plan.")

    st = wait_event(billing_live.app, tenant, "customer.subscription.created", "applied")
    assert st["plan"] == "team"
    page.reload()
    assert page.inner_text("[data-testid=current-plan]") == "Team"
    assert "3 / 1000" in page.inner_text("[data-testid=usage-bars]")
    assert "4242" in page.inner_text("[data-testid=payment-method]")
    assert "paid" in page.inner_text("[data-testid=invoices]")
    assert "customer.subscription.created" in page.inner_text("[data-testid=billing-events]")
    page.screenshot(path=str(artifacts / "billing-team-desktop.png"), full_page=True)
    assert not errors, errors
    assert client.post("/api/v1/requests/", json=body, headers=auth(token)).status_code == 201
    assert state(billing_live.app, tenant)["customer"].startswith("cus_")


def test_dunning_banner_and_operator_billing_in_the_browser(
    browser: Any, billing_live: BillingServer, artifacts: Any, tenant_factory: Any, app: Any
) -> None:
    """A past-due tenant's admin sees the banner on portal pages; an operator sees the
    billing column, MRR and the plan override form."""
    from sqlalchemy import text

    from signoff.cli.operator import create_operator_user

    tenant = tenant_factory(plan="free")
    with in_tenant(billing_live.app, tenant) as s:
        s.execute(
            text(
                "INSERT INTO tenant_billing (status, past_due_since, subscription_status) "
                "VALUES ('past_due', now(), 'past_due')"
            )
        )
        s.commit()
    page = signed_in(
        browser, billing_live.url, tenant.username("admin"), f"/t/{tenant.slug}/", DESKTOP
    )
    banner = page.inner_text("[data-testid=billing-banner]")
    assert "payment" in banner and "grace period" in banner
    page.screenshot(path=str(artifacts / "billing-past-due-banner-desktop.png"), full_page=True)
    page.click("[data-testid=billing-banner] a")
    page.wait_for_selector("[data-testid=billing-past-due]")
    member = signed_in(
        browser, billing_live.url, tenant.username("alice"), f"/t/{tenant.slug}/", DESKTOP
    )
    assert member.query_selector("[data-testid=billing-banner]") is None

    name = f"op-{tenant.slug}"
    create_operator_user(billing_live.app, name, f"{name}@ops.example", "Operat0r-pass!", "O", "P")
    op = signed_in(
        browser, billing_live.url, name, "/operator/", DESKTOP, password="Operat0r-pass!"
    )
    assert "monthly recurring revenue" in op.inner_text("[data-testid=mrr]")
    op.goto(f"{billing_live.url}/operator/tenants/?q={tenant.slug}")
    assert "past due" in op.inner_text(f"[data-testid=billing-{tenant.slug}]")
    op.screenshot(path=str(artifacts / "billing-operator-desktop.png"), full_page=True)
