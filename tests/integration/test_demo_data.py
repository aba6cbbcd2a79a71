"""The quick start's demo tenants come with requests in every state: waiting for each
demo approver, approved, rejected, changes requested, overdue, with attachments and
comments; a second start adds nothing; the printed logins include an operator."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from signoff.cli.run import DEMO_OPERATOR, ensure_demo_operator, load_demo_tenants
from tests.integration.workflow.conftest import in_tenant

ROOT = Path(__file__).resolve().parents[2]
APPROVERS = {
    "acme": ["acme-manager", "acme-manager2", "acme-finance", "acme-cfo", "acme-admin"],
    "globex": ["globex-manager", "globex-finance", "globex-legal"],
}


def _counts(database):
    with database.connect("admin") as conn:
        rows = conn.execute(
            "SELECT t.slug, r.status, count(*) FROM approval_request r "
            "JOIN tenant t ON t.id = r.tenant_id WHERE t.slug IN ('acme', 'globex') "
            "GROUP BY 1, 2"
        ).fetchall()
        extras = conn.execute(
            "SELECT t.slug, (SELECT count(*) FROM attachment a WHERE a.tenant_id = t.id), "
            "(SELECT count(*) FROM request_comment c WHERE c.tenant_id = t.id), t.id "
            "FROM tenant t WHERE t.slug IN ('acme', 'globex')"
        ).fetchall()
    return {(s, st): n for s, st, n in rows}, {s: (a, c, tid) for s, a, c, tid in extras}


def test_demo_tenants_have_requests_in_every_state_once(app, database):
    from signoff.extensions import current_appbuilder
    from signoff.workflow.queries import inbox

    logins = load_demo_tenants(app, ROOT / "tenants")
    assert {entry["tenant"] for entry in logins} == {"acme", "globex"}
    statuses, extras = _counts(database)
    for slug in ("acme", "globex"):
        for status in ("pending", "approved", "rejected", "changes_requested"):
            assert statuses.get((slug, status), 0) >= 1, (slug, status, statuses)
        attachments, comments, _ = extras[slug]
        assert attachments >= 2 and comments >= 1, (slug, extras[slug])

    sm = current_appbuilder(app).sm
    for slug, approvers in APPROVERS.items():
        tenant = SimpleNamespace(id=extras[slug][2])
        overdue = 0
        with in_tenant(app, tenant) as session:
            for username in approvers:
                with app.app_context():
                    uid = int(sm.find_user(username=username).id)
                items = inbox(session, uid)
                assert items, f"{username} has nothing waiting"
                # Changes requested (Standing desks, Train to Hamburg): nothing waits for
                # the approvers until the requester resubmits.
                titles = {i.title for i in items}
                assert not titles & {"Standing desks", "Train to Hamburg"}, (username, titles)
                overdue += sum(1 for i in items if i.overdue)
        assert overdue >= 1, f"nothing overdue in {slug}"

    # A second start (the data dir kept) adds nothing.
    load_demo_tenants(app, ROOT / "tenants")
    assert _counts(database)[0] == statuses

    login = ensure_demo_operator(app)
    assert login == DEMO_OPERATOR
    assert ensure_demo_operator(app) == DEMO_OPERATOR  # idempotent
    with app.app_context():
        operator = sm.find_user(username=DEMO_OPERATOR["username"])
        assert [r.name for r in operator.roles] == ["Operator"]
