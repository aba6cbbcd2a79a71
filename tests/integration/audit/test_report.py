"""Compliance report: every event of the period, usernames, MFA, comments, verification."""

from __future__ import annotations

import csv
import io
import re
import zlib
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text

from signoff import audit
from signoff.audit.report import generate_compliance_report
from tests.integration.audit.conftest import KEY, in_tenant

MEMBERS = {"admin": ["Admin"], "manager": ["Manager"], "alice": ["Requester"]}
INJECTION = '=HYPERLINK("http://evil.example","click")'


@pytest.fixture(scope="module")
def reported(app, tenant_factory):
    """A tenant with users and a few decisions; the clock between the two batches."""
    t = tenant_factory(MEMBERS, managers={})
    with in_tenant(app, t.id) as session:
        audit.append(
            session,
            actor_id=t.user("alice"),
            on_behalf_of_id=None,
            action="request.submitted",
            object_type="approval_request",
            object_id="req-1",
            payload={"amount": "120.00"},
        )
        session.commit()
        middle = session.execute(text("SELECT clock_timestamp()")).scalar_one()
        session.commit()
        audit.append(
            session,
            actor_id=t.user("manager"),
            on_behalf_of_id=t.user("admin"),
            action="request.approved",
            object_type="approval_request",
            object_id="req-1",
            payload={"mfa_verified": True, "comment": "Zoë says ✓, fine\nsecond line"},
        )
        audit.append(
            session,
            actor_id=t.user("admin"),
            on_behalf_of_id=None,
            action="request.commented",
            object_type="approval_request",
            object_id="req-1",
            payload={"mfa_verified": False, "comment": INJECTION},
        )
        audit.append(
            session,
            actor_id=None,
            on_behalf_of_id=None,
            action="request.escalated",
            object_type="approval_request",
            object_id="req-1",
            payload={},
        )
        session.commit()
    return t, middle


def report(app, tenant, start, end, fmt, keys=None):
    with in_tenant(app, tenant.id) as session:
        return generate_compliance_report(session, tenant.id, start, end, fmt, keys=keys)


def parse_csv(body: bytes) -> tuple[dict[str, str], list[dict[str, str]]]:
    lines = body.decode("utf-8").splitlines(keepends=True)
    meta = {}
    for line in lines:
        if not line.startswith("# "):
            break
        key, _, value = line[2:].rstrip("\r\n").partition(": ")
        meta[key] = value
    rows = list(csv.DictReader(io.StringIO("".join(lines[len(meta) :]))))
    return meta, rows


def around_today() -> tuple[date, date]:
    """A period holding the events made today, even if UTC midnight passes meanwhile."""
    today = datetime.now(UTC).date()
    return today - timedelta(days=1), today + timedelta(days=1)


def test_csv_lists_every_event_with_names_mfa_and_comment(app, reported):
    tenant, _ = reported
    first, last = around_today()
    meta, rows = parse_csv(report(app, tenant, first, last, "csv", keys={"k1": KEY}))
    assert meta["tenant"] == f"Tenant {tenant.slug} ({tenant.slug})"
    assert meta["verification"] == "OK"
    assert meta["verification_detail"].startswith("chain ok: 4 events, head seq 4")
    assert "checkpoints: none yet" in meta["verification_detail"]
    assert meta["events_in_period"] == "4"
    assert [r["seq"] for r in rows] == ["1", "2", "3", "4"]
    first, approved, commented, escalated = rows
    assert first["actor"] == tenant.username("alice") and first["mfa_verified"] == ""
    assert approved["action"] == "request.approved"
    assert approved["actor"] == tenant.username("manager")
    assert approved["on_behalf_of"] == tenant.username("admin")
    assert approved["mfa_verified"] == "true"
    assert approved["comment"] == "Zoë says ✓, fine\nsecond line"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", approved["occurred_at_utc"])
    assert commented["mfa_verified"] == "false"
    assert commented["comment"] == "'" + INJECTION  # a spreadsheet shows it, never runs it
    assert escalated["actor"] == "" and escalated["on_behalf_of"] == ""
    assert all(len(bytes.fromhex(r["row_hash"])) == 32 for r in rows)


def test_period_limits_the_events(app, reported):
    tenant, middle = reported
    later = middle.date() + timedelta(days=3)
    _, rows = parse_csv(report(app, tenant, middle, later, "csv"))
    assert [r["seq"] for r in rows] == ["2", "3", "4"]
    meta, rows = parse_csv(report(app, tenant, date(2001, 1, 1), date(2001, 1, 31), "csv"))
    assert rows == [] and meta["events_in_period"] == "0"
    # Verification covers the whole chain, whatever the period.
    assert meta["verification"] == "OK"
    with pytest.raises(ValueError, match="ends before it starts"):
        report(app, tenant, date(2001, 2, 1), date(2001, 1, 1), "csv")
    with pytest.raises(ValueError, match="unknown report format"):
        report(app, tenant, date(2001, 1, 1), date(2001, 1, 1), "xlsx")


def _pdf_text(body: bytes) -> str:
    """Decompressed content and metadata of a PDF, enough to look for a string."""
    chunks = [body.decode("latin-1")]
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", body, re.S):
        try:
            chunks.append(zlib.decompress(match.group(1)).decode("latin-1"))
        except zlib.error:
            continue
    return "\n".join(chunks)


def _utf16_hex(value: str) -> str:
    return ("FEFF" + value.encode("utf-16-be").hex()).upper()


def test_pdf_is_a_pdf_with_the_tenant_name(app, reported):
    tenant, _ = reported
    first, last = around_today()
    body = report(app, tenant, first, last, "pdf", keys={"k1": KEY})
    assert body.startswith(b"%PDF-")
    assert body.rstrip().endswith(b"%%EOF")
    content = _pdf_text(body)
    title = f"Audit compliance report: Tenant {tenant.slug}"
    assert title in content or _utf16_hex(title) in content.upper()


def test_report_of_a_tampered_chain_says_so(app, tenant_factory, database):
    tenant = tenant_factory({"admin": ["Admin"]}, managers={})
    with in_tenant(app, tenant.id) as session:
        for i in range(3):
            audit.append(
                session,
                actor_id=tenant.user("admin"),
                on_behalf_of_id=None,
                action="request.approved",
                object_type="approval_request",
                object_id=str(i),
                payload={"comment": f"ok {i}"},
            )
        session.commit()
    with database.connect("admin") as conn:
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute(
            'UPDATE audit_event SET payload = \'{"comment": "changed"}\' '
            "WHERE tenant_id = %s AND seq = 2",
            (tenant.id,),
        )
    first, last = around_today()
    meta, rows = parse_csv(report(app, tenant, first, last, "csv"))
    assert meta["verification"] == "FAILED"
    assert "BROKEN at seq 2: edited" in meta["verification_detail"]
    assert [r["comment"] for r in rows] == ["ok 0", "changed", "ok 2"]
    assert report(app, tenant, first, last, "pdf").startswith(b"%PDF-")
