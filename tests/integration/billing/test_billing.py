"""Billing end to end against localstripe: plans, quotas (also under concurrency),
signed webhooks (signature, replay, order, crafted customers), dunning, cancel,
isolation between tenants. Stripe is never mocked."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text, update

from tests.fixtures.tenants import api_token, auth, fresh_client, web_login
from tests.fixtures.workflows import spec_expense
from tests.integration.billing.conftest import stripe_client
from tests.integration.billing.helpers import (
    api_for,
    event,
    post_event,
    sign,
    state,
    upgrade,
    wait_event,
)
from tests.integration.workflow.conftest import actor, in_tenant, save


@pytest.fixture
def tenant(billing: Any, tenant_factory: Any, app: Any) -> Any:
    """A free tenant with the expense workflow (made with billing off: its seven
    members are over nothing yet)."""
    t = tenant_factory(plan="free")
    save(app, t, "expense_approval", spec_expense())
    return t


def _set_requests(app: Any, tenant: Any, count: int) -> None:
    from signoff.billing.quotas import this_month

    with in_tenant(app, tenant) as s:
        s.execute(
            text(
                "INSERT INTO billing_usage (period, requests) VALUES (:p, :n) "
                "ON CONFLICT (tenant_id, period) DO UPDATE SET requests = :n"
            ),
            {"p": this_month(), "n": count},
        )
        s.commit()


def _submit(api: Any, who: str = "alice") -> Any:
    return api.post(
        "/api/v1/requests/",
        who,
        json={"workflow": "expense_approval", "title": "x", "input_data": {"amount": 50}},
    )


def _subscribed(billing: Any, tenant: Any) -> dict[str, Any]:
    api = api_for(billing, tenant)
    resp = upgrade(api)
    assert resp.status_code == 200, resp.get_json()
    return wait_event(billing.app, tenant, "customer.subscription.created", "applied")


# --- plans ----------------------------------------------------------------------------


def test_sync_plans_creates_products_and_plans_once(billing: Any) -> None:
    from signoff.billing.stripe_api import sync_plans

    with billing.app.app_context():
        again = sync_plans()
    assert {line["plan"]: line["action"] for line in again} == {
        "free": "free (not in Stripe)",
        "team": "unchanged",
        "enterprise": "unchanged",
    }
    client = stripe_client(billing)
    assert client.v1.plans.retrieve("signoff-team-month").amount == 2900
    assert client.v1.products.retrieve("signoff-enterprise").name == "Signoff Enterprise"


def test_billing_is_off_without_keys(app: Any, tenant_factory: Any) -> None:
    t = tenant_factory(plan="free")
    client = fresh_client(app)
    token = api_token(client, t.username("admin"), t.slug)
    body = client.get("/api/v1/billing/", headers=auth(token)).get_json()
    assert body["enabled"] is False and body["plan"] == "free"
    resp = client.post("/api/v1/billing/upgrade", json={"plan": "team"}, headers=auth(token))
    assert resp.status_code == 404
    assert post_event(client, event("invoice.paid", {})).status_code == 404


# --- quotas ---------------------------------------------------------------------------


def test_over_the_request_quota_is_402_naming_quota_and_plan(billing: Any, tenant: Any) -> None:
    api = api_for(billing, tenant)
    for _ in range(3):
        assert _submit(api).status_code == 201
    resp = _submit(api)
    assert resp.status_code == 402
    body = resp.get_json()
    assert body["code"] == "quota_exceeded"
    assert body["quota"] == "requests_per_month" and body["limit"] == 3
    assert body["plan"] == "free" and body["upgrade_to"] == "team"
    # Nothing already there is lost.
    assert api.get("/api/v1/requests/", "alice").get_json()["count"] == 3
    usage = api.get("/api/v1/billing/usage").get_json()
    assert {q["quota"]: (q["used"], q["limit"]) for q in usage["quotas"]}["requests_per_month"] == (
        3,
        3,
    )


def test_concurrent_submits_at_the_limit_cannot_both_pass(billing: Any, tenant: Any) -> None:
    """Eight submits over real HTTP connections at once, one request left: one passes."""
    _set_requests(billing.app, tenant, 2)
    tokens = [
        api_token(fresh_client(billing.app), tenant.username(who), tenant.slug)
        for who in ("alice", "bob", "manager", "finance", "cfo", "manager2", "admin", "alice")
    ]
    start = threading.Barrier(len(tokens))
    codes: list[int] = []

    def submit(token: str) -> None:
        req = urllib.request.Request(  # noqa: S310 (loopback)
            f"{billing.url}/api/v1/requests/",
            data=json.dumps(
                {"workflow": "expense_approval", "title": "race", "input_data": {"amount": 5}}
            ).encode(),
            headers={"Content-Type": "application/json", **auth(token)},
            method="POST",
        )
        start.wait()
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 (loopback)
                codes.append(resp.status)
        except urllib.error.HTTPError as exc:
            codes.append(exc.code)

    threads = [threading.Thread(target=submit, args=(t,)) for t in tokens]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert sorted(codes) == [201] + [402] * 7, codes
    api = api_for(billing, tenant)
    usage = api.get("/api/v1/billing/usage").get_json()
    assert {q["quota"]: q["used"] for q in usage["quotas"]}["requests_per_month"] == 3


def test_concurrent_members_at_the_limit_cannot_both_join(
    billing: Any, tenant: Any, tenant_factory: Any
) -> None:
    """Two transactions add a member at once with one seat left (free: 9; 7 + 1 used)."""
    from signoff.errors import QuotaExceeded
    from signoff.tenancy.accounts import add_member

    outsiders = tenant_factory({"x1": ["Requester"], "x2": ["Requester"], "x3": ["Requester"]})
    with in_tenant(billing.app, tenant) as s:
        add_member(s(), user_id=outsiders.user("x1"), roles=[], role_rows={})
        s.commit()
    start = threading.Barrier(2)
    results: list[str] = []

    def join(user_id: int) -> None:
        with in_tenant(billing.app, tenant) as s:
            s.execute(text("SELECT 1"))
            start.wait()
            try:
                add_member(s(), user_id=user_id, roles=[], role_rows={})
                time.sleep(0.3)  # hold the transaction open while the other tries
                s.commit()
                results.append("joined")
            except QuotaExceeded as exc:
                results.append(exc.quota)

    threads = [threading.Thread(target=join, args=(outsiders.user(k),)) for k in ("x2", "x3")]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert sorted(results) == ["joined", "members"]


def test_workflow_quota_refuses_a_new_workflow_not_a_new_version(billing: Any, tenant: Any) -> None:
    from signoff.errors import QuotaExceeded
    from signoff.workflow.actions import do_save_workflow

    with in_tenant(billing.app, tenant) as s:
        do_save_workflow(s, actor=actor(tenant, "admin"), key="second", definition=spec_expense())
        with pytest.raises(QuotaExceeded) as exc:
            do_save_workflow(
                s, actor=actor(tenant, "admin"), key="third", definition=spec_expense()
            )
        assert exc.value.quota == "workflows" and exc.value.upgrade_to == "team"
        # A new version of an existing workflow is no new workflow.
        do_save_workflow(
            s, actor=actor(tenant, "admin"), key="expense_approval", definition=spec_expense()
        )


# --- upgrade, webhooks ------------------------------------------------------------------


def test_upgrade_through_the_webhook_raises_the_quota(billing: Any, tenant: Any) -> None:
    api = api_for(billing, tenant)
    _set_requests(billing.app, tenant, 3)
    assert _submit(api).status_code == 402
    assert api.post("/api/v1/billing/upgrade", "alice", json={"plan": "team"}).status_code == 403
    resp = upgrade(api)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["plan"] == "team"
    st = wait_event(billing.app, tenant, "customer.subscription.created", "applied")
    assert st["plan"] == "team" and st["customer"].startswith("cus_")
    assert st["subscription_status"] == "active"
    assert _submit(api).status_code == 201
    invoices = api.get("/api/v1/billing/invoices").get_json()
    assert invoices["count"] == 1
    assert invoices["result"][0]["status"] == "paid"
    assert invoices["result"][0]["amount_paid"] == 2900
    # A second upgrade reuses the customer (created once).
    assert upgrade(api, "enterprise", pm=None).status_code == 200
    assert state(billing.app, tenant)["customer"] == st["customer"]
    assert api.get("/api/v1/billing/").get_json()["plan"] == "enterprise"


def test_a_declined_card_is_402_and_changes_nothing(billing: Any, tenant: Any) -> None:
    api = api_for(billing, tenant)
    resp = upgrade(api, pm="pm_card_visa_chargeDeclined")
    assert resp.status_code == 402, resp.get_json()
    assert resp.get_json()["code"] == "card_declined"
    after = state(billing.app, tenant)
    assert after["plan"] == "free" and after["subscription"] is None
    # The customer made before the card was declined is kept, and used on the retry.
    assert after["customer"].startswith("cus_")
    assert upgrade(api).status_code == 200
    assert state(billing.app, tenant)["customer"] == after["customer"]
    assert api.post("/api/v1/billing/upgrade", json={"plan": "free"}).status_code == 422


def test_unsigned_wrongly_signed_tampered_and_stale_events_are_refused(
    billing: Any, tenant: Any
) -> None:
    st = _subscribed(billing, tenant)
    client = fresh_client(billing.app)
    obj = {"id": st["subscription"], "object": "subscription", "customer": st["customer"]}
    payload = event("customer.subscription.deleted", obj)
    assert post_event(client, payload, None).get_json()["status"] == "unsigned"
    bad = post_event(client, payload, sign(payload, secret="whsec_other"))
    assert (bad.status_code, bad.get_json()["status"]) == (400, "bad_signature")
    tampered = post_event(client, payload.replace(b"deleted", b"created"), sign(payload))
    assert tampered.status_code == 400
    stale = post_event(client, payload, sign(payload, at=int(time.time()) - 3600))
    assert (stale.status_code, stale.get_json()["status"]) == (400, "stale")
    after = state(billing.app, tenant)
    assert after["plan"] == "team"
    # None was recorded (localstripe's own events may still be arriving meanwhile).
    assert "customer.subscription.deleted" not in {t for t, _ in after["events"].values()}


def test_replayed_event_is_processed_once(billing: Any, tenant: Any) -> None:
    st = _subscribed(billing, tenant)
    client = fresh_client(billing.app)
    obj = {"id": st["subscription"], "object": "subscription", "customer": st["customer"]}
    payload = event("customer.subscription.updated", obj, event_id="evt_replay_" + tenant.slug)
    first = post_event(client, payload)
    assert first.get_json()["status"] == "processed"
    again = post_event(client, payload)
    assert (again.status_code, again.get_json()["status"]) == (200, "duplicate")
    events = state(billing.app, tenant)["events"]
    assert [k for k in events if k == "evt_replay_" + tenant.slug] == ["evt_replay_" + tenant.slug]


def test_out_of_order_event_cannot_roll_the_subscription_back(billing: Any, tenant: Any) -> None:
    st = _subscribed(billing, tenant)
    client = fresh_client(billing.app)
    # An old "deleted" arriving late: Stripe's subscription is active, so nothing ends.
    obj = {
        "id": st["subscription"],
        "object": "subscription",
        "customer": st["customer"],
        "status": "canceled",
    }
    resp = post_event(
        client,
        event("customer.subscription.deleted", obj, created=int(time.time()) - 86400),
    )
    assert resp.get_json() == {"status": "processed", "outcome": "applied"}
    assert state(billing.app, tenant)["plan"] == "team"
    # A payment failure older than the last payment applied changes nothing either.
    invoices = stripe_client(billing).v1.invoices.list(params={"customer": st["customer"]})
    paid = invoices.data[0].id
    payload = event(
        "invoice.payment_failed",
        {"id": paid, "object": "invoice", "customer": st["customer"]},
        created=int(time.time()) - 86400,
    )
    assert post_event(client, payload).get_json()["outcome"] in ("ignored_settled", "stale_order")
    assert state(billing.app, tenant)["status"] == "ok"


def test_crafted_events_cannot_touch_another_tenants_plan(
    billing: Any, tenant: Any, tenant_factory: Any, app: Any
) -> None:
    other = tenant_factory(plan="free")
    save(app, other, "expense_approval", spec_expense())
    mine = _subscribed(billing, tenant)
    theirs = _subscribed(billing, other)
    client = fresh_client(billing.app)
    # Their customer with my subscription: refused, nobody changes.
    crafted = event(
        "customer.subscription.deleted",
        {"id": mine["subscription"], "object": "subscription", "customer": theirs["customer"]},
    )
    resp = post_event(client, crafted)
    assert (resp.status_code, resp.get_json()["reason"]) == (400, "customer_mismatch")
    # Metadata naming the other tenant is never read: only my tenant's row is touched.
    with_meta = event(
        "customer.subscription.updated",
        {
            "id": mine["subscription"],
            "object": "subscription",
            "customer": mine["customer"],
            "metadata": {"tenant_id": str(other.id), "tenant": other.slug},
        },
        event_id="evt_meta_" + tenant.slug,
    )
    assert post_event(client, with_meta).get_json()["status"] == "processed"
    assert "evt_meta_" + tenant.slug in state(billing.app, tenant)["events"]
    assert "evt_meta_" + tenant.slug not in state(billing.app, other)["events"]
    # A customer nobody has is acknowledged and ignored.
    unknown = event(
        "customer.subscription.updated",
        {"id": mine["subscription"], "object": "subscription", "customer": "cus_nobody"},
    )
    assert post_event(client, unknown).get_json() == {
        "status": "ignored",
        "reason": "unknown_customer",
    }
    # Unknown types too.
    assert (
        post_event(client, event("charge.refunded", {"id": "ch_1"})).get_json()["status"]
        == "ignored"
    )
    assert state(billing.app, other)["plan"] == "team"
    assert state(billing.app, tenant)["plan"] == "team"


def test_checkout_session_completed_applies_the_fetched_subscription(
    billing: Any, tenant: Any
) -> None:
    st = _subscribed(billing, tenant)
    client = fresh_client(billing.app)
    payload = event(
        "checkout.session.completed",
        {
            "id": "cs_test_1",
            "object": "checkout.session",
            "customer": st["customer"],
            "subscription": st["subscription"],
        },
    )
    assert post_event(client, payload).get_json() == {"status": "processed", "outcome": "applied"}


# --- dunning, cancel ------------------------------------------------------------------


def test_failed_payment_grace_period_and_restoration(billing: Any, tenant: Any) -> None:
    from signoff.billing.models import TenantBilling

    st = _subscribed(billing, tenant)
    api = api_for(billing, tenant)
    rid = api.submit(5000, who="alice")
    stripe = stripe_client(billing)
    failing = stripe.v1.payment_methods.attach(
        "pm_card_chargeCustomerFail", params={"customer": st["customer"]}
    )
    stripe.v1.customers.update(
        st["customer"], params={"invoice_settings": {"default_payment_method": failing.id}}
    )
    invoice = stripe.v1.invoices.create(
        params={"customer": st["customer"], "subscription": st["subscription"]}
    )
    assert stripe.v1.invoices.pay(invoice.id).status == "open"  # declined: still open
    # localstripe records the declined card (the invoice stays open) but sends
    # invoice.payment_failed only for SEPA debits, whose failure also cancels the
    # subscription; so the event Stripe would send is signed and delivered here. The
    # handler checks it against localstripe's invoice like any other.
    failed = event(
        "invoice.payment_failed",
        {"id": invoice.id, "object": "invoice", "customer": st["customer"]},
    )
    assert post_event(fresh_client(billing.app), failed).get_json()["outcome"] == "past_due"
    after = wait_event(billing.app, tenant, "invoice.payment_failed", "past_due")
    assert after["status"] == "past_due" and after["plan"] == "team"
    assert after["past_due_mails"] == 1  # the tenant's one admin, through the outbox
    with in_tenant(billing.app, tenant) as s:
        from flask_appbuilder.security.sqla.models import User

        from signoff.notifications.email import compose
        from signoff.tenancy.models import Tenant
        from signoff.workflow.models import NotificationOutbox

        note = s.scalars(
            select(NotificationOutbox).where(NotificationOutbox.kind == "billing_past_due")
        ).one()
        assert note.recipient_id == tenant.user("admin")
        mail = compose(s(), s.get(Tenant, tenant.id), note, s.get(User, note.recipient_id))
        assert "payment" in mail.subject and "Billing page" in mail.text
    page = api.get("/api/v1/billing/").get_json()
    assert page["status"] == "past_due"
    # The banner: the tenant's admins see it, other members do not.
    admin_web = fresh_client(billing.app)
    web_login(admin_web, tenant.username("admin"))
    assert 'data-testid="billing-banner"' in admin_web.get(f"/t/{tenant.slug}/").get_data(
        as_text=True
    )
    assert 'data-testid="billing-past-due"' in admin_web.get(
        f"/t/{tenant.slug}/admin/billing/"
    ).get_data(as_text=True)
    member_web = fresh_client(billing.app)
    web_login(member_web, tenant.username("alice"))
    assert "billing-banner" not in member_web.get(f"/t/{tenant.slug}/").get_data(as_text=True)
    # Within the grace period work goes on.
    assert _submit(api).status_code == 201
    # After it, new requests are refused with a clear message; decisions continue.
    with in_tenant(billing.app, tenant) as s:
        s.execute(
            update(TenantBilling).values(
                past_due_since=TenantBilling.past_due_since - timedelta(days=8)
            )
        )
        s.commit()
    refused = _submit(api)
    assert refused.status_code == 402
    assert refused.get_json()["code"] == "payment_past_due"
    assert "grace period" in refused.get_json()["message"]
    decided = api.post(f"/api/v1/approval-workflow/approve/{rid}/0", "manager", json={})
    assert decided.status_code == 200, decided.get_json()
    # Paying restores it.
    stripe.v1.payment_methods.attach("pm_card_visa", params={"customer": st["customer"]})
    good = [
        pm.id
        for pm in stripe.v1.payment_methods.list(
            params={"customer": st["customer"], "type": "card"}
        ).data
        if pm.card.last4 == "4242"
    ]
    stripe.v1.customers.update(
        st["customer"], params={"invoice_settings": {"default_payment_method": good[-1]}}
    )
    stripe.v1.invoices.pay(invoice.id)
    wait_event(billing.app, tenant, "invoice.payment_succeeded", "restored")
    assert state(billing.app, tenant)["status"] == "ok"
    assert _submit(api).status_code == 201


def test_cancel_downgrades_at_the_end_of_the_period(billing: Any, tenant: Any) -> None:
    st = _subscribed(billing, tenant)
    api = api_for(billing, tenant)
    resp = api.post("/api/v1/billing/cancel")
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["cancel_at_period_end"] is True
    assert state(billing.app, tenant)["plan"] == "team"  # until the period ends
    # The period ends: Stripe deletes the subscription and says so.
    stripe_client(billing).v1.subscriptions.cancel(st["subscription"])
    wait_event(billing.app, tenant, "customer.subscription.deleted", "downgraded")
    assert state(billing.app, tenant)["plan"] == "free"


# --- isolation --------------------------------------------------------------------------


def test_one_tenants_billing_never_shows_another_tenants(
    billing: Any, tenant: Any, tenant_factory: Any, app: Any
) -> None:
    other = tenant_factory(plan="free")
    save(app, other, "expense_approval", spec_expense())
    mine = _subscribed(billing, tenant)
    theirs_api = api_for(billing, other)
    # Before the other tenant has any customer: no invoices, not ours.
    assert theirs_api.get("/api/v1/billing/invoices").get_json() == {"count": 0, "result": []}
    _subscribed(billing, other)
    my_invoices = {
        i["id"]
        for i in api_for(billing, tenant).get("/api/v1/billing/invoices").get_json()["result"]
    }
    their_invoices = {
        i["id"] for i in theirs_api.get("/api/v1/billing/invoices").get_json()["result"]
    }
    assert my_invoices and their_invoices and not (my_invoices & their_invoices)
    assert set(state(billing.app, tenant)["events"]).isdisjoint(state(billing.app, other)["events"])
    # A member who is no admin gets nothing.
    assert theirs_api.get("/api/v1/billing/", "alice").status_code == 403
    # The billing page: another tenant's is 404; one's own shows only its invoices.
    client = fresh_client(billing.app)
    web_login(client, other.username("admin"))
    assert client.get(f"/t/{tenant.slug}/admin/billing/").status_code == 404
    page = client.get(f"/t/{other.slug}/admin/billing/").get_data(as_text=True)
    assert all(i in page for i in their_invoices)
    assert not any(i in page for i in my_invoices)
    assert mine["customer"] not in page
    with in_tenant(billing.app, other) as s:
        from signoff.billing.models import TenantBilling

        assert s.scalar(select(TenantBilling.stripe_customer_id)) != mine["customer"]


# --- operators ------------------------------------------------------------------------


def test_operators_see_billing_and_override_a_plan_with_a_reason(billing: Any, tenant: Any) -> None:
    from signoff.audit.models import AuditEvent
    from signoff.cli.operator import create_operator_user

    st = _subscribed(billing, tenant)
    name = f"op-{tenant.slug}"
    create_operator_user(billing.app, name, f"{name}@ops.example", "Operat0r-pass!", "O", "P")
    client = fresh_client(billing.app)
    web_login(client, name, "Operat0r-pass!")
    page = client.get("/operator/").get_data(as_text=True)
    assert 'data-testid="mrr"' in page and "monthly recurring revenue" in page
    page = client.get(f"/operator/tenants/?q={tenant.slug}").get_data(as_text=True)
    row = page.split(f'data-slug="{tenant.slug}"')[1].split("</tr>")[0]
    assert "active" in row
    path = f"/operator/tenants/{tenant.id}/plan"
    client.post(path, data={"plan": "enterprise", "reason": ""})
    assert state(billing.app, tenant)["plan"] == "team"  # no reason, no change
    client.post(path, data={"plan": "enterprise", "reason": "pilot agreed by sales"})
    assert state(billing.app, tenant)["plan"] == "enterprise"
    with in_tenant(billing.app, tenant) as s:
        audited = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "tenant.plan_overridden")
        ).all()
        assert len(audited) == 1
        assert audited[0].payload["reason"] == "pilot agreed by sales"
    # Stripe's events no longer move the plan while the override holds.
    obj = {"id": st["subscription"], "object": "subscription", "customer": st["customer"]}
    post_event(fresh_client(billing.app), event("customer.subscription.updated", obj))
    assert state(billing.app, tenant)["plan"] == "enterprise"
    client.post(path, data={"plan": "stripe", "reason": "pilot over"})
    assert state(billing.app, tenant)["plan"] == "team"


def test_channels_follow_the_plan(billing: Any, tenant: Any) -> None:
    """Free includes neither webhooks nor Slack (402 naming the channel and the plan that
    includes it); after upgrading, webhooks can be registered."""
    api = api_for(billing, tenant)
    body = {"url": "https://hooks.example.com/signoff"}
    refused = api.post("/api/v1/webhooks/", json=body)
    assert refused.status_code == 402
    assert (refused.get_json()["quota"], refused.get_json()["upgrade_to"]) == ("webhooks", "team")
    web = fresh_client(billing.app)
    web_login(web, tenant.username("admin"))
    page = web.post(
        f"/t/{tenant.slug}/admin/slack/",
        data={"webhook_url": "https://hooks.slack.com/services/T0/B0/x"},
    ).get_data(as_text=True)
    assert "not included in the Free plan" in page
    _subscribed(billing, tenant)
    assert api.post("/api/v1/webhooks/", json=body).status_code != 402


def test_sync_plans_command(billing: Any, database: Any, redis_url: str) -> None:
    """``signoff billing sync-plans`` from the environment; again, it changes nothing.
    Without a key it says billing is off and fails."""
    from click.testing import CliRunner

    from signoff.cli import cli

    env = {
        "SIGNOFF_DATABASE_URL": database.app_url.render_as_string(hide_password=False),
        "SIGNOFF_SECRET_KEY": "cli-test-secret-key-0123456789abcdef",
        "SIGNOFF_REDIS_URL": redis_url,
        "SIGNOFF_AUDIT_KEY": "test-audit-key",
        "SIGNOFF_STRIPE_SECRET_KEY": "sk_test_cli",
        "SIGNOFF_STRIPE_API_BASE": billing.stripe.url,
        "SIGNOFF_BILLING_PLANS": json.dumps(
            {"free": {"price": 0}, "pro": {"name": "Pro", "price": 4900, "currency": "eur"}}
        ),
    }
    first = CliRunner().invoke(cli, ["billing", "sync-plans"], env=env)
    assert first.exit_code == 0, first.output
    assert "pro: created (signoff-pro, signoff-pro-month)" in first.output
    again = CliRunner().invoke(cli, ["billing", "sync-plans"], env=env)
    assert "pro: unchanged" in again.output
    plan = stripe_client(billing).v1.plans.retrieve("signoff-pro-month")
    assert (plan.amount, plan.currency) == (4900, "eur")
    off = CliRunner().invoke(
        cli, ["billing", "sync-plans"], env={**env, "SIGNOFF_STRIPE_SECRET_KEY": ""}
    )
    assert off.exit_code != 0 and "not configured" in off.output


def test_attachment_storage_follows_the_plan(billing: Any, tenant: Any, monkeypatch: Any) -> None:
    """The plan's attachment_mb bounds what a tenant stores; the usage counts it."""
    from signoff.billing import quotas
    from signoff.errors import QuotaExceeded
    from signoff.workflow.actions import do_attach, do_submit

    free = billing.app.config["SIGNOFF_BILLING_PLANS"]["free"]["quotas"]
    monkeypatch.setitem(free, "attachment_mb", 1)
    # A text file of 600 KiB: the first fits in 1 MB, the second would not.
    data = b"receipt line\n" * (600 * 1024 // 13)
    with in_tenant(billing.app, tenant) as s:
        rid = do_submit(
            s(),
            actor=actor(tenant, "alice"),
            workflow_key="expense_approval",
            input_data={"amount": "5000"},
            title="Offsite",
        ).request_id
        do_attach(s(), actor=actor(tenant, "alice"), request_id=rid, filename="a.txt", data=data)
        with pytest.raises(QuotaExceeded) as exc:
            do_attach(
                s(), actor=actor(tenant, "alice"), request_id=rid, filename="b.txt", data=data
            )
        assert exc.value.quota == "attachment_mb" and exc.value.upgrade_to == "team"
        used = {q["quota"]: q["used"] for q in quotas.usage(s())["quotas"]}
        assert used["attachment_mb"] == 1
