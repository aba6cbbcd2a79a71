"""Issue 15 item 1, auditors (continued): a workflow's ``auditors: [role, ...]`` open
the detail of that workflow's requests, read-only, in the portal and through the API:
input, steps, timeline, history, comments, attachments (list and download). Every write
over HTTP (decide, comment, attach, delete an attachment, withdraw, resubmit) answers
an auditor 403 and writes nothing. Another workflow's request, a guessed id and another
tenant's request are 404, as for anyone who may not see them."""

from __future__ import annotations

import io
import uuid
from typing import Any

import pytest

from tests.fixtures.tenants import DEFAULT_MEMBERS
from tests.fixtures.workflows import spec_expense
from tests.integration.api.conftest import Api, assert_error
from tests.integration.views.conftest import submit, text_of
from tests.integration.workflow.conftest import actor, in_tenant, save

#: ``auditor`` holds only Legal: no step of either workflow names it, so whatever
#: they see of a request, they see as an auditor.
MEMBERS = {**DEFAULT_MEMBERS, "auditor": ["Legal"]}
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010800000000"
    "3a7e9b550000000a49444154789c63600000000200015e5f6d2c0000000049454e44ae426082"
)


def _audited_tenant(app: Any, tenant_factory: Any) -> Any:
    tenant = tenant_factory(MEMBERS)
    save(app, tenant, "expense_approval", spec_expense(auditors=["Legal"]))
    save(app, tenant, "travel", spec_expense(name="Travel"))
    return tenant


@pytest.fixture(scope="module")
def audited(app, tenant_factory):
    """An audited expense request (alice's, with a comment and a PNG), a request sent
    back for changes, and a travel request nobody audits."""
    from signoff.workflow.actions import do_attach, do_comment, do_request_changes

    tenant = _audited_tenant(app, tenant_factory)
    rid = submit(app, tenant, "expense_approval", {"amount": 500, "vendor": "Acme"}, title="Chairs")
    back = submit(app, tenant, "expense_approval", {"amount": 300}, title="Offsite")
    other = submit(app, tenant, "travel", {"amount": 600}, title="Flight to Lisbon")
    with in_tenant(app, tenant) as session:
        do_comment(session, actor=actor(tenant, "alice"), request_id=rid, body="Receipt attached")
        attached = do_attach(
            session, actor=actor(tenant, "alice"), request_id=rid, filename="r.png", data=PNG
        )
        do_request_changes(
            session,
            actor=actor(tenant, "manager"),
            request_id=back,
            step_index=0,
            comment="Add the venue",
        )
    return tenant, str(rid), str(back), str(other), attached.extra["attachment_id"]


def _footprint(database: Any, rid: str) -> tuple[Any, ...]:
    """Everything a write on the request leaves behind, read past row-level security."""
    with database.connect("admin") as conn:
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM request_comment WHERE request_id = %(r)s),"
            " (SELECT count(*) FROM attachment WHERE request_id = %(r)s),"
            " (SELECT count(*) FROM step_decision WHERE request_id = %(r)s),"
            " (SELECT count(*) FROM audit_event WHERE object_id = %(r)s::text),"
            " (SELECT count(*) FROM notification_outbox WHERE request_id = %(r)s)",
            {"r": rid},
        ).fetchone()
        state = conn.execute(
            "SELECT status, round, updated_at FROM approval_request WHERE id = %s", (rid,)
        ).fetchone()
    return tuple(counts) + tuple(state)


def test_an_auditor_opens_the_request_page_read_only(audited, login):
    tenant, rid, _back, _other, aid = audited
    auditor = login(tenant.username("auditor"))
    resp = auditor.get(f"/t/{tenant.slug}/requests/{rid}")
    assert resp.status_code == 200, resp.status_code
    html = text_of(resp)
    # What an approver sees: the input, the chain, the timeline with the comment, the file.
    assert 'data-testid="request-title">Chairs<' in html
    assert "Acme" in html and 'data-testid="chain"' in html and "Manager Approval" in html
    assert "Receipt attached" in html and 'id="timeline"' in html
    assert f"/attachments/{aid}/download" in html and f"/attachments/{aid}/thumbnail" in html
    assert 'data-testid="read-only-note"' in html and "Expense Approval" in html
    # None of the forms: decide, comment, attach, delete, withdraw, resubmit.
    assert 'data-testid="decide"' not in html and 'name="verdict"' not in html
    assert f"/requests/{rid}/comment" not in html and 'data-testid="attachment-form"' not in html
    assert 'data-testid="attachment-delete"' not in html
    assert "/withdraw" not in html and "/resubmit" not in html
    assert '<form method="post"' not in html.split('id="main"', 1)[-1]
    # The file downloads, and previews as the page shows it.
    download = auditor.get(f"/t/{tenant.slug}/attachments/{aid}/download")
    assert download.status_code == 200 and download.data == PNG
    assert auditor.get(f"/t/{tenant.slug}/attachments/{aid}/preview").status_code == 200
    assert auditor.get(f"/t/{tenant.slug}/attachments/{aid}/thumbnail").status_code == 200
    # The list of the requests they audit links the page.
    listed = text_of(auditor.get(f"/t/{tenant.slug}/admin/requests/"))
    assert f'href="/t/{tenant.slug}/requests/{rid}"' in listed


def test_the_page_is_unchanged_for_the_people_involved(audited, login):
    tenant, rid, _back, _other, _aid = audited
    html = text_of(login(tenant.username("manager")).get(f"/t/{tenant.slug}/requests/{rid}"))
    assert 'data-testid="decide"' in html and 'data-testid="read-only-note"' not in html
    assert f"/requests/{rid}/comment" in html and 'data-testid="attachment-form"' in html


def test_every_form_post_of_an_auditor_is_403_and_writes_nothing(audited, login, database):
    tenant, rid, back, _other, aid = audited
    auditor = login(tenant.username("auditor"))
    base = f"/t/{tenant.slug}"
    before = {r: _footprint(database, r) for r in (rid, back)}
    attempts = [
        ("post", f"{base}/requests/{rid}/decide", {"verdict": "approve", "step": "0"}),
        (
            "post",
            f"{base}/requests/{rid}/decide",
            {"verdict": "reject", "step": "0", "comment": "x"},
        ),
        ("post", f"{base}/requests/{rid}/comment", {"body": "An auditor's remark"}),
        (
            "post",
            f"{base}/requests/{rid}/attachments",
            {"files": (io.BytesIO(PNG), "audit.png"), "body": "with a file"},
        ),
        ("post", f"{base}/requests/{rid}/attachments", {"body": "a comment alone"}),
        ("get", f"{base}/attachments/{aid}/delete", None),
        ("post", f"{base}/attachments/{aid}/delete", {"confirm": "yes"}),
        ("get", f"{base}/requests/{rid}/withdraw", None),
        ("post", f"{base}/requests/{rid}/withdraw", {"confirm": "yes"}),
        ("get", f"{base}/requests/{back}/resubmit", None),
        ("post", f"{base}/requests/{back}/resubmit", {"title": "Offsite", "amount": "1"}),
    ]
    for method, url, data in attempts:
        kw = {"data": data, "content_type": "multipart/form-data"} if data else {}
        resp = getattr(auditor, method)(url, **kw)
        assert resp.status_code == 403, (method, url, resp.status_code)
    assert {r: _footprint(database, r) for r in (rid, back)} == before


def test_the_api_reads_the_detail_timeline_history_and_files(audited, client):
    tenant, rid, _back, _other, aid = audited
    api = Api(client, tenant)
    detail = api.get(f"/api/v1/requests/{rid}", "auditor")
    assert detail.status_code == 200, detail.get_json()
    body = detail.get_json()
    assert body["title"] == "Chairs" and body["input_data"]["vendor"] == "Acme"
    assert [s["name"] for s in body["steps"]][:1] == ["Manager Approval"]
    timeline = api.get(f"/api/v1/requests/{rid}/timeline", "auditor")
    assert timeline.status_code == 200
    assert "Receipt attached" in str(timeline.get_json()["result"])
    history = api.get(f"/api/v1/approval-workflow/history/{rid}", "auditor")
    assert history.status_code == 200
    listed = api.get(f"/api/v1/attachments/?request_id={rid}", "auditor")
    assert listed.status_code == 200 and listed.get_json()["result"][0]["id"] == aid
    assert api.get(f"/api/v1/attachments/{aid}", "auditor").status_code == 200
    content = api.get(f"/api/v1/attachments/{aid}/content", "auditor")
    assert content.status_code == 200 and content.data == PNG


def test_every_api_write_of_an_auditor_is_403_and_writes_nothing(audited, client, database):
    tenant, rid, back, _other, aid = audited
    api = Api(client, tenant)
    before = {r: _footprint(database, r) for r in (rid, back)}
    refusals = [
        api.post(f"/api/v1/requests/{rid}/comments", "auditor", json={"body": "A remark"}),
        api.post(
            f"/api/v1/requests/{rid}/comments",
            "auditor",
            json={"body": "A remark"},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        ),
        api.post(f"/api/v1/approval-workflow/approve/{rid}/0", "auditor", json={}),
        api.post(f"/api/v1/approval-workflow/reject/{rid}", "auditor", json={"comment": "no"}),
        api.post(f"/api/v1/requests/{rid}/request-changes", "auditor", json={"comment": "x"}),
        api.post(f"/api/v1/requests/{rid}/withdraw", "auditor"),
        api.post(f"/api/v1/requests/{back}/resubmit", "auditor", json={}),
        api.post(
            "/api/v1/attachments/",
            "auditor",
            data={"request_id": rid, "file": (io.BytesIO(PNG), "audit.png")},
            content_type="multipart/form-data",
        ),
        api.delete(f"/api/v1/attachments/{aid}", "auditor"),
    ]
    for resp in refusals:
        assert resp.status_code == 403, (resp.request.path, resp.get_data(as_text=True))
        assert_error(resp, 403, "read_only")
    assert {r: _footprint(database, r) for r in (rid, back)} == before


def test_another_workflows_request_and_guessed_ids_are_404(audited, login, client):
    tenant, _rid, _back, other, _aid = audited
    auditor = login(tenant.username("auditor"))
    api = Api(client, tenant)
    for rid in (other, str(uuid.uuid4())):
        assert auditor.get(f"/t/{tenant.slug}/requests/{rid}").status_code == 404
        assert (
            auditor.post(f"/t/{tenant.slug}/requests/{rid}/comment", data={"body": "x"}).status_code
            == 404
        )
        assert_error(api.get(f"/api/v1/requests/{rid}", "auditor"), 404, "not_found")
        assert_error(api.get(f"/api/v1/requests/{rid}/timeline", "auditor"), 404)
        assert_error(api.get(f"/api/v1/attachments/?request_id={rid}", "auditor"), 404)
        assert_error(
            api.post(f"/api/v1/requests/{rid}/comments", "auditor", json={"body": "x"}), 404
        )
        assert_error(api.post(f"/api/v1/approval-workflow/approve/{rid}/0", "auditor"), 404)
    # Nor is it listed (the all-requests page keeps to the audited workflows).
    assert "Flight to Lisbon" not in text_of(auditor.get(f"/t/{tenant.slug}/admin/requests/"))


def test_another_tenants_auditor_sees_nothing_of_this_tenant(
    audited, app, tenant_factory, login, client
):
    tenant, rid, _back, _other, aid = audited
    foreign = _audited_tenant(app, tenant_factory)  # the same workflow, the same auditors
    auditor = login(foreign.username("auditor"))
    for slug in (foreign.slug, tenant.slug):
        assert auditor.get(f"/t/{slug}/requests/{rid}").status_code == 404
        assert auditor.get(f"/t/{slug}/attachments/{aid}/download").status_code == 404
    api = Api(client, foreign)
    assert_error(api.get(f"/api/v1/requests/{rid}", "auditor"), 404, "not_found")
    assert_error(api.get(f"/api/v1/requests/{rid}/timeline", "auditor"), 404)
    assert_error(api.get(f"/api/v1/approval-workflow/history/{rid}", "auditor"), 404)
    assert_error(api.get(f"/api/v1/attachments/{aid}/content", "auditor"), 404)
    assert_error(api.post(f"/api/v1/requests/{rid}/comments", "auditor", json={"body": "x"}), 404)
    assert_error(api.delete(f"/api/v1/attachments/{aid}", "auditor"), 404)


def test_removing_the_auditors_closes_the_page(app, tenant_factory, login):
    """The rule reads the workflow's current definition, as the all-requests page does."""
    tenant = _audited_tenant(app, tenant_factory)
    rid = submit(app, tenant, "expense_approval", {"amount": 500}, title="Desk")
    auditor = login(tenant.username("auditor"))
    assert auditor.get(f"/t/{tenant.slug}/requests/{rid}").status_code == 200
    save(app, tenant, "expense_approval", spec_expense())
    assert auditor.get(f"/t/{tenant.slug}/requests/{rid}").status_code == 404


def test_bulk_approval_decides_nothing_for_an_auditor(audited, login, database):
    """The inbox's bulk form is a batch (its page lists each item's outcome), so it is
    not a 403 as a whole: the auditor's item is refused and nothing is written."""
    tenant, rid, _back, _other, _aid = audited
    auditor = login(tenant.username("auditor"))
    before = _footprint(database, rid)
    resp = auditor.post(
        f"/t/{tenant.slug}/bulk", data={"item": f"{rid}:0:", "verdict": "approve", "confirm": "yes"}
    )
    assert resp.status_code == 200
    assert "Chairs" not in text_of(resp)  # a refused item shows no title
    assert _footprint(database, rid) == before
