"""The admin Webhooks page: register (the secret shown once), change, test event,
rotate, redeliver, delete; another tenant's ids are a plain 404; Admins only."""

from __future__ import annotations

import re
import uuid

from tests.fixtures.tenants import fresh_client, web_login
from tests.integration.notifications.conftest import register


def _login(app, tenant, who="admin"):
    client = fresh_client(app)
    web_login(client, tenant.username(who))
    return client


def _text(resp):
    return resp.get_data(as_text=True)


def test_register_shows_the_secret_once_then_manage(app, wa, allow, receivers):
    r = receivers()
    client = _login(app, wa)
    base = f"/t/{wa.slug}/admin/webhooks/"
    page = client.get(base)
    assert page.status_code == 200 and "Register an endpoint" in _text(page)
    assert f'href="/t/{wa.slug}/admin/webhooks/"' in _text(client.get(f"/t/{wa.slug}/admin/"))
    created = client.post(
        base, data={"url": r.url, "description": "ERP", "event_types": ["request.approved"]}
    )
    assert created.status_code == 200
    html = _text(created)
    secret = re.search(r'value="(whsec_[^"]+)"', html).group(1)
    assert "shown only once" in html
    assert "no-store" in created.headers.get("Cache-Control", "")
    endpoint_id = re.search(r"/admin/webhooks/([0-9a-f-]{36})/test", html).group(1)
    detail = client.get(f"{base}{endpoint_id}")
    assert detail.status_code == 200 and secret not in _text(detail)
    assert secret not in _text(client.get(base))
    # A test event from the page: delivered, verified, in the log.
    r.secret = secret
    tested = client.post(f"{base}{endpoint_id}/test", follow_redirects=True)
    assert "Test event delivered: HTTP 200" in _text(tested)
    assert r.received[-1].error is None and r.received[-1].verified["type"] == "webhook.test"
    assert "webhook.test" in _text(tested) and "webhook-deliveries" in _text(tested)
    delivery_id = re.search(r"/deliveries/([0-9a-f-]{36})/redeliver", _text(tested)).group(1)
    again = client.post(f"{base}deliveries/{delivery_id}/redeliver", follow_redirects=True)
    assert "Redelivery delivered" in _text(again) and len(r.received) == 2
    # Save with a refused URL: the error names the problem, nothing changes.
    bad = client.post(
        f"{base}{endpoint_id}", data={"url": "http://169.254.169.254/", "active": "on"}
    )
    assert bad.status_code == 200 and "metadata" in _text(bad)
    saved = client.post(
        f"{base}{endpoint_id}",
        data={"url": r.url, "event_types": ["request.rejected"]},
        follow_redirects=True,
    )
    assert "Endpoint saved." in _text(saved) and "inactive" in _text(client.get(base))
    rotated = client.post(f"{base}{endpoint_id}/rotate")
    new_secret = re.search(r'value="(whsec_[^"]+)"', _text(rotated)).group(1)
    assert new_secret != secret
    deleted = client.post(f"{base}{endpoint_id}/delete", follow_redirects=True)
    assert "deleted" in _text(deleted) and client.get(f"{base}{endpoint_id}").status_code == 404


def test_a_refused_url_is_explained_on_the_form(app, wa, allow):
    client = _login(app, wa)
    resp = client.post(f"/t/{wa.slug}/admin/webhooks/", data={"url": "http://10.0.0.8/hook"})
    assert resp.status_code == 200
    assert "resolves to a private address" in _text(resp)
    assert 'value="http://10.0.0.8/hook"' in _text(resp)


def test_another_tenants_endpoint_and_delivery_are_a_plain_404(
    app, wa, wb, api_b, allow, receivers, database
):
    ep = register(api_b, receivers())
    delivery = api_b.post(f"/api/v1/webhooks/{ep['id']}/test").get_json()
    client = _login(app, wa)
    base = f"/t/{wa.slug}/admin/webhooks"
    for method, path in (
        ("get", f"{base}/{ep['id']}"),
        ("post", f"{base}/{ep['id']}"),
        ("post", f"{base}/{ep['id']}/test"),
        ("post", f"{base}/{ep['id']}/rotate"),
        ("post", f"{base}/{ep['id']}/delete"),
        ("post", f"{base}/deliveries/{delivery['id']}/redeliver"),
        ("get", f"{base}/{uuid.uuid4()}"),
    ):
        assert getattr(client, method)(path, data={"url": "http://127.0.0.1:9/"}).status_code == 404
    assert ep["url"] not in _text(client.get(f"{base}/"))
    # B's own pages under A's slug are not B's either.
    assert client.get(f"/t/{wb.slug}/admin/webhooks/{ep['id']}").status_code == 404
    assert api_b.get(f"/api/v1/webhooks/{ep['id']}").get_json()["active"] is True


def test_only_admins_see_the_page(app, wa):
    client = _login(app, wa, "manager")
    assert client.get(f"/t/{wa.slug}/admin/webhooks/").status_code in (403, 404)
    assert client.post(f"/t/{wa.slug}/admin/webhooks/", data={"url": "x"}).status_code in (
        403,
        404,
    )
