"""Input hardening: the usual XSS and SQL injection payloads through every write path
(action layer, REST API, web forms) are stored inert and rendered escaped; free text
has length limits; injected search strings match literally and break nothing.

``WRITE_PATHS`` lists every write path that takes free text; a new endpoint joins
the test by adding one entry (how to send a payload, where it is stored, which page
shows it).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.fixtures.tenants import api_token, auth, make_tenant, web_login
from tests.fixtures.workflows import spec_expense
from tests.integration.security.conftest import fresh_client, submit
from tests.integration.workflow.conftest import actor, in_tenant, save

XSS = [
    "<script>alert('xss')</script>",
    '<img src=x onerror="alert(1)">',
    '"><svg/onload=alert(1)>',
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    '<a href="javascript:alert(1)">click</a>',
    "<iframe srcdoc='<script>alert(1)</script>'></iframe>",
]
SQLI = [
    "'; DROP TABLE approval_request; --",
    "' OR '1'='1",
    "1); DELETE FROM tenant; --",
    "Robert'); DROP TABLE step_decision;--",
    "$$; SELECT pg_sleep(10); $$",
    "\\'; TRUNCATE audit_event; --",
]
PAYLOADS = XSS + SQLI

#: Markup that must never reach a page unescaped.
DANGEROUS = re.compile(r"<\s*(script|img|svg|iframe|a\s+href\s*=\s*[\"']?javascript)", re.I)
TAG = re.compile(r"<[a-zA-Z!/]")


@dataclass
class Ctx:
    app: Any
    tenant: Any
    tokens: dict[str, str]
    api: Any  # test client for the API
    web: dict[str, Any]  # signed-in web clients

    def pending(self, amount: int = 5000) -> uuid.UUID:
        return submit(self.app, self.tenant, amount=amount)

    def post_api(self, who: str, path: str, body: Any) -> Any:
        return self.api.post(path, json=body, headers=auth(self.tokens[who]))


@dataclass
class Stored:
    """Where a payload landed: one text value, and the pages that show it."""

    table: str
    column: str
    row_id: Any
    pages: list[str]
    id_column: str = "id"


WritePath = Callable[[Ctx, str], Stored]


def _request_page(ctx: Ctx, rid: Any) -> list[str]:
    return [f"/t/{ctx.tenant.slug}/requests/{rid}", f"/t/{ctx.tenant.slug}/mine"]


# --- the write paths ----------------------------------------------------------------


def action_submit_title(ctx: Ctx, payload: str) -> Stored:
    from signoff.workflow.actions import do_submit

    with in_tenant(ctx.app, ctx.tenant) as session:
        result = do_submit(
            session,
            actor=actor(ctx.tenant, "alice"),
            workflow_key="expense_approval",
            input_data={"amount": 5000},
            title=payload,
        )
    return Stored(
        "approval_request", "title", result.request_id, _request_page(ctx, result.request_id)
    )


def action_comment(ctx: Ctx, payload: str) -> Stored:
    from signoff.workflow.actions import do_comment

    rid = ctx.pending()
    with in_tenant(ctx.app, ctx.tenant) as session:
        result = do_comment(session, actor=actor(ctx.tenant, "alice"), request_id=rid, body=payload)
    return Stored("request_comment", "body", result.extra["comment_id"], _request_page(ctx, rid))


def action_approve_comment(ctx: Ctx, payload: str) -> Stored:
    from signoff.workflow.actions import do_approve

    rid = ctx.pending()
    with in_tenant(ctx.app, ctx.tenant) as session:
        do_approve(
            session,
            actor=actor(ctx.tenant, "manager"),
            request_id=rid,
            step_index=0,
            comment=payload,
        )
    return Stored("step_decision", "comment", rid, _request_page(ctx, rid), id_column="request_id")


def action_delegation_reason(ctx: Ctx, payload: str) -> Stored:
    from signoff.workflow.actions import do_delegate

    now = datetime.now(UTC)
    with in_tenant(ctx.app, ctx.tenant) as session:
        did = do_delegate(
            session,
            actor=actor(ctx.tenant, "manager"),
            delegate_id=ctx.tenant.user("manager2"),
            starts_at=now + timedelta(days=30),
            ends_at=now + timedelta(days=31),
            reason=payload,
        )
    return Stored("delegation", "reason", did, [f"/t/{ctx.tenant.slug}/delegations"])


def api_submit_title(ctx: Ctx, payload: str) -> Stored:
    resp = ctx.post_api(
        "alice",
        "/api/v1/requests/",
        {"workflow": "expense_approval", "title": payload, "input_data": {"amount": 5000}},
    )
    assert resp.status_code == 201, resp.get_json()
    rid = resp.get_json()["request_id"]
    return Stored("approval_request", "title", rid, _request_page(ctx, rid))


def api_comment(ctx: Ctx, payload: str) -> Stored:
    rid = ctx.pending()
    resp = ctx.post_api("alice", f"/api/v1/requests/{rid}/comments", {"body": payload})
    assert resp.status_code in (200, 201), resp.get_json()
    return Stored("request_comment", "body", resp.get_json()["comment_id"], _request_page(ctx, rid))


def api_approve_comment(ctx: Ctx, payload: str) -> Stored:
    rid = ctx.pending()
    resp = ctx.post_api(
        "manager", f"/api/v1/approval-workflow/approve/{rid}/0", {"comment": payload}
    )
    assert resp.status_code == 200, resp.get_json()
    return Stored("step_decision", "comment", rid, _request_page(ctx, rid), id_column="request_id")


def api_reject_comment(ctx: Ctx, payload: str) -> Stored:
    rid = ctx.pending()
    resp = ctx.post_api("manager", f"/api/v1/approval-workflow/reject/{rid}", {"comment": payload})
    assert resp.status_code == 200, resp.get_json()
    return Stored("step_decision", "comment", rid, _request_page(ctx, rid), id_column="request_id")


def api_request_changes_comment(ctx: Ctx, payload: str) -> Stored:
    rid = ctx.pending()
    resp = ctx.post_api("manager", f"/api/v1/requests/{rid}/request-changes", {"comment": payload})
    assert resp.status_code == 200, resp.get_json()
    return Stored("step_decision", "comment", rid, _request_page(ctx, rid), id_column="request_id")


def api_delegation_reason(ctx: Ctx, payload: str) -> Stored:
    now = datetime.now(UTC)
    resp = ctx.post_api(
        "manager",
        "/api/v1/delegations/",
        {
            "delegate_id": ctx.tenant.user("manager2"),
            "starts_at": (now + timedelta(days=40)).isoformat(),
            "ends_at": (now + timedelta(days=41)).isoformat(),
            "reason": payload,
        },
    )
    assert resp.status_code == 201, resp.get_json()
    return Stored(
        "delegation", "reason", resp.get_json()["id"], [f"/t/{ctx.tenant.slug}/delegations"]
    )


def web_comment(ctx: Ctx, payload: str) -> Stored:
    rid = ctx.pending()
    resp = ctx.web["alice"].post(
        f"/t/{ctx.tenant.slug}/requests/{rid}/comment", data={"body": payload}
    )
    assert resp.status_code == 302
    with in_tenant(ctx.app, ctx.tenant) as session:
        from sqlalchemy import select

        from signoff.workflow.models import RequestComment

        cid = session.scalar(select(RequestComment.id).where(RequestComment.request_id == rid))
    assert cid is not None, "the comment was not stored"
    return Stored("request_comment", "body", cid, _request_page(ctx, rid))


def web_decide_comment(ctx: Ctx, payload: str) -> Stored:
    rid = ctx.pending()
    resp = ctx.web["manager"].post(
        f"/t/{ctx.tenant.slug}/requests/{rid}/decide",
        data={"verdict": "approve", "step": "0", "comment": payload},
    )
    assert resp.status_code == 302
    return Stored("step_decision", "comment", rid, _request_page(ctx, rid), id_column="request_id")


def web_delegation_reason(ctx: Ctx, payload: str) -> Stored:
    now = datetime.now(UTC)
    resp = ctx.web["manager2"].post(
        f"/t/{ctx.tenant.slug}/delegations",
        data={
            "delegate": str(ctx.tenant.user("manager")),
            "starts_at": (now + timedelta(days=50)).strftime("%Y-%m-%dT%H:%M"),
            "ends_at": (now + timedelta(days=51)).strftime("%Y-%m-%dT%H:%M"),
            "reason": payload,
        },
    )
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    with in_tenant(ctx.app, ctx.tenant) as session:
        from sqlalchemy import select

        from signoff.workflow.models import Delegation

        did = session.scalar(
            select(Delegation.id)
            .where(Delegation.delegator_id == ctx.tenant.user("manager2"))
            .order_by(Delegation.created_at.desc())
            .limit(1)
        )
    return Stored("delegation", "reason", did, [f"/t/{ctx.tenant.slug}/delegations"])


WRITE_PATHS: dict[str, WritePath] = {
    "action: submit title": action_submit_title,
    "action: comment": action_comment,
    "action: approve comment": action_approve_comment,
    "action: delegation reason": action_delegation_reason,
    "api: POST /requests/ title": api_submit_title,
    "api: POST /requests/<id>/comments": api_comment,
    "api: POST /approval-workflow/approve": api_approve_comment,
    "api: POST /approval-workflow/reject": api_reject_comment,
    "api: POST /requests/<id>/request-changes": api_request_changes_comment,
    "api: POST /delegations/ reason": api_delegation_reason,
    "web: comment form": web_comment,
    "web: decision comment": web_decide_comment,
    "web: delegation reason": web_delegation_reason,
}


# --- fixtures -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def ctx(app: Any) -> Ctx:
    tenant = make_tenant(app, plan="enterprise")
    save(app, tenant, "expense_approval", spec_expense())
    api = fresh_client(app)
    tokens = {
        who: api_token(api, tenant.username(who), tenant.slug) for who in ("alice", "manager")
    }
    web = {}
    for who in ("alice", "manager", "manager2", "admin"):
        client = fresh_client(app)
        web_login(client, tenant.username(who))
        web[who] = client
    return Ctx(app=app, tenant=tenant, tokens=tokens, api=api, web=web)


@pytest.fixture(autouse=True)
def _no_decision_limit(monkeypatch: Any, app: Any) -> None:
    # Hundreds of decisions by one manager here; the limit has its own tests.
    monkeypatch.setitem(app.config, "FAB_APPROVAL_RATE_LIMIT_EXEMPTIONS", ["Manager"])


def stored_value(database: Any, where: Stored) -> str:
    with database.connect("admin") as conn:
        # Identifiers come from WRITE_PATHS (constants of this module), never input.
        row = conn.execute(
            f"SELECT {where.column} FROM {where.table} WHERE {where.id_column} = %s "
            "ORDER BY 1 DESC LIMIT 1",
            (str(where.row_id),),
        ).fetchone()
    assert row is not None, where
    return str(row[0])


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("path", list(WRITE_PATHS))
def test_payloads_are_stored_inert_and_rendered_escaped(ctx, database, path, payload):
    # Some plain text too: a value that is nothing but markup is refused as empty.
    where = WRITE_PATHS[path](ctx, f"Note {payload}")
    value = stored_value(database, where)
    # Stored inert: no markup survives; SQL stays a harmless string, byte for byte.
    assert not TAG.search(value), value
    if payload in SQLI:
        assert payload in value
    # Rendered escaped on every page that shows it.
    viewer = ctx.web["admin"]
    for page in where.pages:
        resp = viewer.get(page)
        assert resp.status_code == 200, page
        html = resp.get_data(as_text=True)
        assert not DANGEROUS.search(html), (page, DANGEROUS.search(html))
    # The database is intact.
    with database.connect("admin") as conn:
        for table in ("approval_request", "step_decision", "tenant", "audit_event"):
            assert conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is not None
        assert conn.execute(
            "SELECT count(*) FROM tenant WHERE id = %s", (ctx.tenant.id,)
        ).fetchone() == (1,)


@pytest.mark.parametrize("payload", XSS)
def test_free_form_input_data_is_rendered_escaped(ctx, payload):
    rid = ctx.post_api(
        "alice",
        "/api/v1/requests/",
        {
            "workflow": "expense_approval",
            "title": "x",
            "input_data": {"amount": 5000, "note": payload},
        },
    ).get_json()["request_id"]
    html = ctx.web["admin"].get(f"/t/{ctx.tenant.slug}/requests/{rid}").get_data(as_text=True)
    assert not DANGEROUS.search(html)
    api = ctx.api.get(f"/api/v1/requests/{rid}", headers=auth(ctx.tokens["alice"]))
    assert api.mimetype == "application/json"


# --- length limits ------------------------------------------------------------------


@pytest.mark.parametrize(
    "call,field",
    [
        (
            lambda ctx: ctx.post_api(
                "alice",
                "/api/v1/requests/",
                {"workflow": "expense_approval", "title": "t" * 201, "input_data": {"amount": 1}},
            ),
            "title",
        ),
        (
            lambda ctx: ctx.post_api(
                "alice", f"/api/v1/requests/{ctx.pending()}/comments", {"body": "c" * 4001}
            ),
            "body",
        ),
        (
            lambda ctx: ctx.post_api(
                "manager",
                f"/api/v1/approval-workflow/approve/{ctx.pending()}/0",
                {"comment": "c" * 4001},
            ),
            "comment",
        ),
    ],
)
def test_api_text_fields_have_length_limits(ctx, call, field):
    resp = call(ctx)
    assert resp.status_code in (400, 422), resp.get_json()
    assert resp.get_json()["field"] == field


def test_action_layer_text_fields_have_length_limits(ctx):
    from signoff.workflow.actions import Invalid, do_comment, do_delegate, do_submit

    now = datetime.now(UTC)
    calls = {
        "title": lambda s: do_submit(
            s,
            actor=actor(ctx.tenant, "alice"),
            workflow_key="expense_approval",
            input_data={"amount": 1},
            title="t" * 201,
        ),
        "body": lambda s: do_comment(
            s, actor=actor(ctx.tenant, "alice"), request_id=rid, body="b" * 4001
        ),
        "reason": lambda s: do_delegate(
            s,
            actor=actor(ctx.tenant, "manager"),
            delegate_id=ctx.tenant.user("manager2"),
            starts_at=now,
            ends_at=now + timedelta(days=1),
            reason="r" * 501,
        ),
    }
    rid = ctx.pending()
    for field, call in calls.items():
        with in_tenant(ctx.app, ctx.tenant) as session, pytest.raises(Invalid) as exc:
            call(session)
        assert exc.value.code == "too_long"
        assert exc.value.field in (field, "comment"), (field, exc.value.field)
    with pytest.raises(Invalid) as exc:
        _too_long_decision(ctx)
    assert exc.value.code == "too_long" and exc.value.field == "comment"


def _too_long_decision(ctx: Ctx) -> None:
    from signoff.workflow.actions import do_approve

    rid = ctx.pending()
    with in_tenant(ctx.app, ctx.tenant) as session:
        do_approve(
            session,
            actor=actor(ctx.tenant, "manager"),
            request_id=rid,
            step_index=0,
            comment="c" * 4001,
        )


# --- injection through reads --------------------------------------------------------


@pytest.mark.parametrize("payload", SQLI)
def test_injected_search_strings_match_literally(ctx, payload):
    for path in ("/api/v1/requests/", "/api/v1/approval-workflow/pending"):
        resp = ctx.api.get(
            path, query_string={"search": payload}, headers=auth(ctx.tokens["manager"])
        )
        assert resp.status_code == 200, (path, resp.get_json())
        # The search is literal: only titles containing the string itself match (the
        # write tests above stored such titles), never "everything".
        for item in resp.get_json()["result"]:
            assert payload.lower() in item["title"].lower(), (path, item["title"])
    page = ctx.web["manager"].get(f"/t/{ctx.tenant.slug}/", query_string={"q": payload})
    assert page.status_code == 200
