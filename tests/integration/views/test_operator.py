"""Operator console: tenants (counts only), suspend/reactivate, audit status, health,
and the ``signoff create-operator`` command."""

from __future__ import annotations

import re
import uuid

import pytest
from click.testing import CliRunner

from signoff.cli.operator import create_operator_user
from tests.integration.views.conftest import fresh_client, submit, text_of

OPERATOR_PASSWORD = "Operat0r-passphrase!"


@pytest.fixture(scope="module")
def operator(app):
    name = f"op-{uuid.uuid4().hex[:6]}"
    create_operator_user(app, name, f"{name}@ops.example", OPERATOR_PASSWORD, "Olga", "Ops")
    return name


def _operator_client(app, operator):
    from tests.fixtures.tenants import web_login

    client = fresh_client(app)
    web_login(client, operator, OPERATOR_PASSWORD)
    return client


def test_tenant_members_cannot_open_the_console(tenant_a, login):
    admin = login(tenant_a.username("admin"))
    resp = admin.get("/operator/")
    assert resp.status_code in (302, 403)
    assert "Tenants" not in text_of(resp)
    assert admin.post(
        f"/operator/tenants/{tenant_a.id}/status", data={"status": "suspended"}
    ).status_code in (302, 403)
    assert fresh_client(admin.application).get("/operator/").status_code == 302


def test_dashboard_shows_counts_but_no_tenant_data(app, operator, portal_tenant):
    submit(
        app,
        portal_tenant,
        "purchase_request",
        {"item": "Top secret item", "amount": "9"},
        title="Confidential acquisition",
    )
    client = _operator_client(app, operator)
    page = client.get(f"/operator/tenants/?q={portal_tenant.slug}")
    assert page.status_code == 200
    html = text_of(page)
    row = html.split(f'data-slug="{portal_tenant.slug}"')[1].split("</tr>")[0]
    # members, workflows, requests, pending
    assert '<td class="num">7</td><td class="num">3</td><td class="num">1</td>' in row
    assert "Confidential acquisition" not in html and "Top secret item" not in html
    assert f"alice@{portal_tenant.slug}" not in html
    dashboard = text_of(client.get("/operator/"))
    assert 'data-testid="health"' in dashboard and "postgresql" in dashboard
    # The dashboard verifies no chain: it shows the newest signed checkpoints.
    assert 'data-testid="checkpoints"' in dashboard and "tenant chains verified" not in dashboard
    assert "Confidential acquisition" not in dashboard and 'data-testid="all-tenants"' in dashboard
    audit = text_of(client.get(f"/operator/audit/?q={portal_tenant.slug}"))
    assert _slugs(audit) == [portal_tenant.slug]
    assert "Confidential acquisition" not in audit and "Top secret item" not in audit


def _bulk_tenants(database, prefix, count, status="active"):
    """``count`` bare tenant rows (no members): enough for listing and counting."""
    slugs = [f"{prefix}{i:02d}" for i in range(count)]
    with database.connect("admin") as conn:
        for slug in slugs:
            conn.execute(
                "INSERT INTO tenant (slug, name, status) VALUES (%s, %s, %s)",
                (slug, f"Bulk {slug}", status),
            )
    return slugs


def _slugs(html):
    return re.findall(r'<tr data-slug="([^"]+)"', html)


def test_tenants_page_is_paged_searched_and_filtered(app, database, operator):
    tag = uuid.uuid4().hex[:6]
    many = _bulk_tenants(database, f"pg-{tag}-a", 60)
    few = _bulk_tenants(database, f"pg-{tag}-s", 3, status="suspended")
    client = _operator_client(app, operator)

    first = text_of(client.get(f"/operator/tenants/?q=pg-{tag}"))
    assert _slugs(first) == sorted(many + few)[:50]
    assert "63 tenants match" in first and 'rel="next"' in first and 'rel="prev"' not in first
    second = text_of(client.get(f"/operator/tenants/?q=PG-{tag}&page=2"))  # case-insensitive
    assert _slugs(second) == sorted(many + few)[50:]
    assert 'rel="prev"' in second and 'rel="next"' not in second
    assert f'href="/operator/tenants/?q=PG-{tag}"' in second  # previous: page 1, no page=
    # The name is searched too; % and _ are taken literally.
    assert _slugs(text_of(client.get(f"/operator/tenants/?q=Bulk%20pg-{tag}-a07"))) == [many[7]]
    assert _slugs(text_of(client.get(f"/operator/tenants/?q=pg-{tag}%25"))) == []
    assert _slugs(text_of(client.get(f"/operator/tenants/?q=pg_{tag}"))) == []
    suspended = text_of(client.get(f"/operator/tenants/?q=pg-{tag}&status=suspended"))
    assert _slugs(suspended) == few and "3 tenants match" in suspended
    active = text_of(client.get(f"/operator/tenants/?q=pg-{tag}&status=active&page=2"))
    assert _slugs(active) == many[50:]
    # The totals line counts every tenant, whatever the page shows.
    with database.connect("admin") as conn:
        total, off = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = 'suspended') FROM tenant"
        ).fetchone()
    assert f"{total} · {off} suspended" in first
    # A page past the end shows the last one.
    assert _slugs(text_of(client.get(f"/operator/tenants/?q=pg-{tag}&page=9"))) == _slugs(second)

    for query, field in (("page=0", "page: "), ("page=x", "page: "), ("status=gone", "status: ")):
        resp = client.get(f"/operator/tenants/?{query}")
        assert resp.status_code == 400 and field in text_of(resp), query
    assert client.get("/operator/tenants/?q=" + "x" * 101).status_code == 400

    # Acting on a tenant returns to the page, search and filter the form came from.
    target = many[55]
    resp = client.post(
        f"/operator/tenants/{_tenant_id(database, target)}/plan",
        data={"plan": "team", "list_q": f"pg-{tag}", "list_status": "active", "list_page": "2"},
    )
    assert resp.status_code == 302
    assert resp.headers["Location"].endswith(f"/operator/tenants/?q=pg-{tag}&status=active&page=2")


def _tenant_id(database, slug):
    with database.connect("admin") as conn:
        return conn.execute("SELECT id FROM tenant WHERE slug = %s", (slug,)).fetchone()[0]


def _statements(app, client, path):
    from sqlalchemy import event

    from signoff.extensions import db

    seen = []

    def record(_conn, _cursor, statement, *_args):
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        resp = client.get(path)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert resp.status_code == 200, path
    return seen


def test_console_pages_cost_the_same_statements_for_5_or_50_tenants(app, database, operator):
    tag = uuid.uuid4().hex[:6]
    _bulk_tenants(database, f"st-{tag}-f", 5)
    _bulk_tenants(database, f"st-{tag}-m", 50)
    client = _operator_client(app, operator)
    client.get(f"/operator/tenants/?q=st-{tag}-f")  # warms the permission cache
    five = _statements(app, client, f"/operator/tenants/?q=st-{tag}-f")
    fifty = _statements(app, client, f"/operator/tenants/?q=st-{tag}-m")
    assert len(five) == len(fifty), (five, fifty)
    counting = [s for s in fifty if "operator_tenant_counts" in s]
    assert len(counting) == 1
    assert not any("audit_verify_all" in s for s in fifty)

    # The Audit page likewise: a page of tenants, their last stored verification read
    # with the counts, no chain verified.
    five = _statements(app, client, f"/operator/audit/?q=st-{tag}-f")
    fifty = _statements(app, client, f"/operator/audit/?q=st-{tag}-m")
    assert len(five) == len(fifty), (five, fifty)
    assert len([s for s in fifty if "operator_tenant_counts" in s]) == 1
    assert not any("audit_verify" in s for s in fifty)

    # The dashboard's statements do not grow with the number of tenants either (all of
    # its counts come from one call of the counting function), and it verifies no chain.
    before = _statements(app, client, "/operator/")
    _bulk_tenants(database, f"st-{tag}-x", 45)
    after = _statements(app, client, "/operator/")
    assert len(before) == len(after), (before, after)
    assert len([s for s in after if "operator_tenant_counts" in s]) == 1
    assert not any("audit_verify" in s for s in after)


def _bulk_support_grants(database, slugs):
    """A live support grant (4 hours, "Ticket <slug>") in each of ``slugs``' tenants."""
    with database.connect("admin") as conn:
        for slug in slugs:
            conn.execute(
                "INSERT INTO support_access_grant (tenant_id, granted_by, reason, expires_at) "
                "SELECT id, 1, %s, now() + interval '4 hours' FROM tenant WHERE slug = %s",
                (f"Ticket {slug}", slug),
            )


def test_support_page_costs_the_same_statements_for_5_or_50_granting_tenants(
    app, database, operator
):
    """The Support page reads every tenant's live grant in one statement
    (signoff.operator_support_grants, migration 0045) and the granting tenants in one
    more: 45 more tenants with a grant, and as many without, add no statement."""
    tag = uuid.uuid4().hex[:6]
    five = _bulk_tenants(database, f"sg-{tag}-f", 5)
    _bulk_support_grants(database, five)
    client = _operator_client(app, operator)
    client.get("/operator/support/")  # warms the permission cache
    before = _statements(app, client, "/operator/support/")
    more = _bulk_tenants(database, f"sg-{tag}-m", 45)
    _bulk_support_grants(database, more)
    _bulk_tenants(database, f"sg-{tag}-n", 45)  # no grant: not listed, not visited
    after = _statements(app, client, "/operator/support/")
    assert len(before) == len(after), (before, after)
    assert len([s for s in after if "operator_support_grants" in s]) == 1, after
    # Every granting tenant is listed, with its grant; the others are not.
    page = text_of(client.get("/operator/support/"))
    listed = set(re.findall(r'<tr data-slug="([^"]+)"', page))
    assert set(five + more) <= listed and not listed & {f"sg-{tag}-n{i:02d}" for i in range(45)}
    assert f"Ticket {more[-1]}" in page


def _verification(html, slug):
    return re.sub(
        r"\s+", " ", html.split(f'data-testid="verification-{slug}">')[1].split("</td>")[0]
    )


def test_audit_page_is_paged_and_verifies_one_chain_on_demand(
    app, database, operator, portal_tenant
):
    tag = uuid.uuid4().hex[:6]
    many = _bulk_tenants(database, f"au-{tag}-", 53)
    client = _operator_client(app, operator)
    first = text_of(client.get(f"/operator/audit/?q=au-{tag}"))
    assert _slugs(first) == many[:50] and 'rel="next"' in first
    second = text_of(client.get(f"/operator/audit/?q=au-{tag}&page=2"))
    assert _slugs(second) == many[50:] and "no events yet" in _verification(second, many[51])
    assert client.get("/operator/audit/?page=0").status_code == 400

    t = portal_tenant
    submit(app, t, "purchase_request", {"item": "Secret widget", "amount": "5"}, title="Hush")
    page = text_of(client.get(f"/operator/audit/?q={t.slug}"))
    assert "not verified yet" in _verification(page, t.slug)
    with database.connect("admin") as conn:
        head = conn.execute(
            "SELECT max(seq) FROM audit_event WHERE tenant_id = %s", (t.id,)
        ).fetchone()[0]

    resp = client.post(f"/operator/audit/{t.id}/verify", data={"list_q": t.slug, "list_page": "1"})
    assert resp.status_code == 302
    assert resp.headers["Location"].endswith(f"/operator/audit/?q={t.slug}")
    page = text_of(client.get(resp.headers["Location"]))
    shown = _verification(page, t.slug)
    assert "intact" in shown and "by an operator" in shown and f"events 1 to {head}" in shown
    assert "the audit chain is intact" in page
    assert "Secret widget" not in page and "Hush" not in page

    # An edited event (as the superuser, triggers off): the next verification says broken,
    # names the seq and the kind, and the operator's verification is in the tenant's chain.
    with database.connect("admin") as conn:
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute(
            "UPDATE audit_event SET payload = payload || '{\"forged\": true}'::jsonb "
            "WHERE tenant_id = %s AND seq = 2",
            (t.id,),
        )
    client.post(f"/operator/audit/{t.id}/verify", data={"list_q": t.slug})
    page = text_of(client.get(f"/operator/audit/?q={t.slug}"))
    shown = _verification(page, t.slug)
    assert "broken" in shown and "at seq 2:" in shown and "changed after it was written" in shown
    with database.connect("admin") as conn:
        events = conn.execute(
            "SELECT payload FROM audit_event WHERE tenant_id = %s AND action = 'audit.verified' "
            "ORDER BY seq",
            (t.id,),
        ).fetchall()
        stored = conn.execute(
            "SELECT ok, source, broken_seq, problem FROM audit_verification WHERE tenant_id = %s",
            (t.id,),
        ).fetchone()
    assert [e[0]["ok"] for e in events] == [True, False]
    assert events[1][0]["problem"] == "edited" and events[1][0]["operator"] == operator
    assert stored == (False, "operator", 2, "edited")
    dashboard = text_of(client.get("/operator/"))
    assert 'data-testid="broken-chains"' in dashboard and "broken at" in dashboard

    # The checkpoint job's verification of the newest events does not hide the break;
    # it cannot sign over it either.
    from signoff.extensions import db
    from signoff.jobs import sign_checkpoints

    with app.app_context():
        outcome = sign_checkpoints(db.session, app.config, slug=t.slug)[0]
        db.session.remove()
    assert outcome.error and "edited" in outcome.error
    with database.connect("admin") as conn:
        stored = conn.execute(
            "SELECT ok, source, broken_seq, problem FROM audit_verification WHERE tenant_id = %s",
            (t.id,),
        ).fetchone()
    assert stored == (False, "job", 2, "edited")
    assert client.post(f"/operator/audit/{uuid.uuid4()}/verify").status_code == 404


def test_the_checkpoint_job_stores_what_it_verified(app, database, portal_tenant):
    from signoff.extensions import db
    from signoff.jobs import sign_checkpoints

    t = portal_tenant
    with app.app_context():
        first = sign_checkpoints(db.session, app.config, slug=t.slug)[0]
        db.session.remove()
    assert first.error is None and first.checkpoint is not None
    head = first.checkpoint.seq
    with database.connect("admin") as conn:
        stored = conn.execute(
            "SELECT ok, source, from_seq, to_seq, rows_checked FROM audit_verification "
            "WHERE tenant_id = %s",
            (t.id,),
        ).fetchone()
    assert stored == (True, "job", 1, head, head)
    submit(app, t, "purchase_request", {"item": "Desk", "amount": "5"})
    with app.app_context():
        second = sign_checkpoints(db.session, app.config, slug=t.slug)[0]
        db.session.remove()
    with database.connect("admin") as conn:
        stored = conn.execute(
            "SELECT ok, from_seq, to_seq FROM audit_verification WHERE tenant_id = %s", (t.id,)
        ).fetchone()
    assert stored == (True, head + 1, second.checkpoint.seq)


def test_audit_verification_rows_are_tenant_isolated(database, tenant_factory):
    """The app role sees and writes only the bound tenant's stored verification."""
    a, b = tenant_factory(), tenant_factory()
    with database.connect("app") as conn:
        for t in (a, b):
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(t.id),))
            conn.execute("INSERT INTO audit_verification (ok, source) VALUES (true, 'job')")
        assert conn.execute("SELECT tenant_id FROM audit_verification").fetchall() == [(b.id,)]
        conn.execute("SELECT set_config('app.tenant_id', '', true)")
        assert conn.execute("SELECT count(*) FROM audit_verification").fetchone() == (0,)
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(a.id),))
        assert (
            conn.execute(
                "UPDATE audit_verification SET ok = false, problem = 'x' WHERE tenant_id = %s",
                (b.id,),
            ).rowcount
            == 0
        )
        with pytest.raises(Exception, match="row-level security"):
            conn.execute(
                "INSERT INTO audit_verification (tenant_id, ok, source) VALUES (%s, true, 'job')",
                (b.id,),
            )


def test_dashboard_lists_the_busiest_tenants_only(app, operator, portal_tenant):
    from signoff.views.operator import DASHBOARD_TOP

    submit(app, portal_tenant, "purchase_request", {"item": "Chair", "amount": "5"})
    client = _operator_client(app, operator)
    html = text_of(client.get("/operator/"))
    rows = re.findall(r'<tr data-slug="[^"]+">(.*?)</tr>', html, re.S)
    assert 0 < len(rows) <= DASHBOARD_TOP
    pending = [int(re.findall(r'<td class="num">(\d+)</td>', row)[3]) for row in rows]
    assert pending == sorted(pending, reverse=True) and pending[0] >= 1
    assert 'href="/operator/tenants/"' in html


def test_dashboard_totals_match_the_per_tenant_counts(app, portal_tenant):
    """The dashboard's one grouped statement adds up to what the tenants' own rows say."""
    from signoff.extensions import db
    from signoff.views.operator import billing_totals, platform_metrics, tenant_facts

    submit(app, portal_tenant, "purchase_request", {"item": "Lamp", "amount": "5"})
    with app.app_context():
        try:
            rows, totals, billing = platform_metrics(db.session, top=3)
            facts = tenant_facts(db.session, None)
            every = list(facts.values())
            per_tenant = billing_totals(((f.billing, 1) for f in every), totals["by_plan"])
        finally:
            db.session.rollback()
            db.session.remove()
    assert totals["tenants"] == len(every)
    for name in ("members", "workflows", "requests", "pending", "decisions", "dead_deliveries"):
        assert totals[name] == sum(getattr(f.counts, name) for f in every), name
    assert totals["audit"]["chains"] == sum(1 for f in every if f.audit_head_seq)
    assert totals["audit"]["unsigned"] == sum(1 for f in every if f.unsigned)
    signed = [f.checkpoint_at for f in every if f.checkpoint_at]
    assert totals["audit"]["last_signed"] == (max(signed) if signed else None)
    assert totals["billing"] == per_tenant
    busy = sorted(
        (t for t, f in facts.items() if f.counts.pending or f.counts.dead_deliveries),
        key=lambda t: (-facts[t].counts.pending, -facts[t].counts.dead_deliveries),
    )
    assert [(c.pending, c.dead_deliveries) for _, c in rows] == [
        (facts[t].counts.pending, facts[t].counts.dead_deliveries) for t in busy[:3]
    ]
    assert rows and all(c == facts[t.id].counts for t, c in rows)
    assert all(billing[t.id] == facts[t.id].billing for t, _ in rows)


def test_the_counting_function_refuses_a_bound_tenant(app, tenant_a):
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from signoff.db.binding import bound_tenant
    from signoff.extensions import db
    from signoff.views.operator import tenant_facts

    with app.app_context():
        try:
            facts = tenant_facts(db.session, [tenant_a.id])
            assert list(facts) == [tenant_a.id] and facts[tenant_a.id].counts.members >= 1
            with bound_tenant(tenant_a.id, db.session):
                db.session.execute(text("SELECT 1"))
                with pytest.raises(DBAPIError, match="not allowed while a tenant is bound"):
                    tenant_facts(db.session, None)
                db.session.rollback()
            # Its caller's binding (none) is restored after it.
            db.session.execute(text("SELECT 1"))
            tenant_facts(db.session, [tenant_a.id])
            assert db.session.scalar(text("SELECT signoff.current_tenant_id()")) is None
        finally:
            db.session.rollback()
            db.session.remove()


def test_suspend_and_reactivate(app, database, operator, tenant_factory, login):
    t = tenant_factory()
    alice = login(t.username("alice"))
    assert alice.get(f"/t/{t.slug}/").status_code == 200
    client = _operator_client(app, operator)
    asked = client.post(f"/operator/tenants/{t.id}/status", data={"status": "suspended"})
    assert asked.status_code == 200 and "Yes, suspend" in text_of(asked)
    assert alice.get(f"/t/{t.slug}/").status_code == 200  # not yet: only asked
    resp = client.post(
        f"/operator/tenants/{t.id}/status", data={"status": "suspended", "confirm": "yes"}
    )
    assert resp.status_code == 302

    page = alice.get(f"/t/{t.slug}/")
    assert page.status_code == 403
    assert "This organisation is suspended" in text_of(page)
    assert alice.get(f"/t/{t.slug}/admin/").status_code == 403
    # Anonymous visitors are sent to sign in, as for any tenant.
    assert fresh_client(app).get(f"/t/{t.slug}/").status_code == 302

    with database.connect("admin") as conn:
        kept = conn.execute(
            "SELECT count(*) FROM membership WHERE tenant_id = %s", (t.id,)
        ).fetchone()[0]
        actions = [
            r[0]
            for r in conn.execute(
                "SELECT action FROM audit_event WHERE tenant_id = %s ORDER BY seq", (t.id,)
            )
        ]
    assert kept == 7 and "tenant.suspended" in actions

    client.post(f"/operator/tenants/{t.id}/status", data={"status": "active"})
    assert alice.get(f"/t/{t.slug}/").status_code == 200
    client.post(f"/operator/tenants/{t.id}/plan", data={"plan": "enterprise"})
    with database.connect("admin") as conn:
        assert conn.execute("SELECT plan FROM tenant WHERE id = %s", (t.id,)).fetchone() == (
            "enterprise",
        )
    assert (
        client.post(
            f"/operator/tenants/{uuid.uuid4()}/status", data={"status": "active"}
        ).status_code
        == 404
    )


def test_suspended_tenant_page_is_403_for_members_only(app, database, tenant_factory, login):
    t = tenant_factory()
    other = tenant_factory()
    with database.connect("admin") as conn:
        conn.execute("UPDATE tenant SET status = 'suspended' WHERE id = %s", (t.id,))
    outsider = login(other.username("admin"))
    assert outsider.get(f"/t/{t.slug}/").status_code == 404
    member = login(t.username("bob"))
    assert member.get(f"/t/{t.slug}/mine").status_code == 403


def test_create_operator_cli(app, database, monkeypatch):
    from signoff.cli import cli

    monkeypatch.setattr("signoff.app.create_app", lambda *a, **k: app)
    name = f"cli-op-{uuid.uuid4().hex[:6]}"
    runner = CliRunner()
    weak = runner.invoke(
        cli,
        ["create-operator", name, f"{name}@ops.example"],
        env={"SIGNOFF_OPERATOR_PASSWORD": "weak"},
    )
    assert weak.exit_code != 0 and "at least 10 characters" in weak.output
    result = runner.invoke(
        cli,
        ["create-operator", name, f"{name}@ops.example"],
        env={"SIGNOFF_OPERATOR_PASSWORD": OPERATOR_PASSWORD},
    )
    assert result.exit_code == 0, result.output
    with database.connect("admin") as conn:
        roles = conn.execute(
            "SELECT r.name FROM ab_user u JOIN ab_user_role ur ON ur.user_id = u.id "
            "JOIN ab_role r ON r.id = ur.role_id WHERE u.username = %s",
            (name,),
        ).fetchall()
    assert roles == [("Operator",)]  # never FAB Admin (break-glass is create-platform-admin)
    again = runner.invoke(
        cli,
        ["create-operator", name, f"{name}@ops.example"],
        env={"SIGNOFF_OPERATOR_PASSWORD": OPERATOR_PASSWORD},
    )
    assert again.exit_code != 0 and "exists already" in again.output
    assert _operator_client(app, name).get("/operator/").status_code == 200
