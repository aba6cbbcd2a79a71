"""The operator's Audit page in Chromium: a page of tenants with each chain's last
stored verification (the checkpoint job's, or an operator's), one chain verified on
demand with the row's button, a tampered chain shown as broken. Screenshots land in
test-artifacts/."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from tests.e2e.conftest import DESKTOP, signed_in
from tests.fixtures.tenants import make_tenant
from tests.fixtures.workflows import spec_expense
from tests.integration.workflow.conftest import save


def test_the_audit_page_verifies_one_chain_and_shows_a_break(
    live_server: Any, browser: Any, database: Any, artifacts: Path
) -> None:
    from signoff.cli.operator import create_operator_user
    from signoff.extensions import db
    from signoff.jobs import sign_checkpoints

    live = live_server.app
    tag = uuid.uuid4().hex[:6]
    tenants = [make_tenant(live, slug=f"aud-{tag}-{n}") for n in ("a", "b", "c")]
    for t in tenants:
        save(live, t, "expense_approval", spec_expense())
    # The checkpoint job verifies and signs the first two chains (not the third), then
    # the second tenant's chain is edited behind its back.
    with live.app_context():
        for t in tenants[:2]:
            sign_checkpoints(db.session, live.config, slug=t.slug)
        db.session.remove()
    broken = tenants[1]
    with database.connect("admin") as conn:
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute(
            "UPDATE audit_event SET action = 'member.removed' WHERE tenant_id = %s AND seq = 1",
            (broken.id,),
        )

    name = f"op-{tag}"
    password = "Operator-pass-0451"
    create_operator_user(live, name, f"{name}@ops.example", password, "Olga", "Ops")
    page = signed_in(
        browser, live_server.url, name, f"/operator/audit/?q=aud-{tag}", DESKTOP, password
    )
    assert "3 tenants match" in page.inner_text("[data-testid=tenant-count]")
    job = page.inner_text(f"[data-testid=verification-{tenants[0].slug}]")
    assert "intact" in job and "by the checkpoint job" in job
    # The job's last verification said intact: nothing was verified since the edit.
    assert "intact" in page.inner_text(f"[data-testid=verification-{broken.slug}]")
    assert "not verified yet" in page.inner_text(f"[data-testid=verification-{tenants[2].slug}]")
    fits = page.eval_on_selector(
        "[data-testid=audit-results]",
        "t => t.parentElement.scrollWidth <= t.parentElement.clientWidth",
    )
    assert fits, "the audit table is wider than its card"
    page.screenshot(path=str(artifacts / "operator-audit.png"), full_page=True)

    with page.expect_navigation():
        page.click(f"tr[data-slug='{broken.slug}'] button:has-text('Verify now')")
    assert f"{broken.slug}: the audit chain is broken." in page.inner_text("main")
    shown = page.inner_text(f"[data-testid=verification-{broken.slug}]")
    assert "broken" in shown and "by an operator" in shown and "at seq 1:" in shown
    assert "aud-" in page.url and tag in page.url  # back at the same search
    page.screenshot(path=str(artifacts / "operator-audit-broken.png"), full_page=True)
    page.context.close()
