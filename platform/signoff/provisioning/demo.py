"""The quick start's demo requests: a manifest's ``demo_requests`` made real.

Each entry is submitted, decided, commented on and given attachments through the same
actions as everywhere (audited, notified), so every inbox of the demo tenants has
something in it: requests waiting for each demo approver, approved, rejected, changes
requested and overdue ones. Only for a tenant that has no request yet, so a restart of
the quick start adds nothing twice. A manifest entry::

    - title: Conference tickets
      workflow: expense_approval
      by: acme-bob
      input: {amount: 2400, description: Two tickets}
      decisions: [{by: acme-manager, verdict: approve, comment: Fine}]
      comments: [{by: acme-bob, body: "@acme-finance the invoice is attached"}]
      attach: [conference-invoice.pdf]      # generated: .png, .pdf or .txt
      overdue: true                          # the active step was due a day ago

Overdue is the only fact that is not the result of an action: the active step's due
time is moved into the past (the state and its step projection), as if the request had
waited since then. Decisions on MFA steps are taken as freshly verified (demo data).
"""

from __future__ import annotations

import json
import struct
import uuid
import zlib
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from signoff.db.binding import bound_tenant
from signoff.extensions import current_appbuilder
from signoff.tenancy.models import Tenant
from signoff.workflow.actions import (
    ActionResult,
    Actor,
    do_approve,
    do_attach,
    do_comment,
    do_reject,
    do_request_changes,
    do_submit,
)
from signoff.workflow.engine import state_from_dict
from signoff.workflow.models import ApprovalRequest

VERDICTS: dict[str, Callable[..., ActionResult]] = {
    "approve": do_approve,
    "reject": do_reject,
    "request_changes": do_request_changes,
}


class DemoError(ValueError):
    """A ``demo_requests`` entry that cannot be played; the message says which."""


def seed_demo_requests(app: Flask, session: Session, data: Mapping[str, Any]) -> int:
    """Play the manifest's ``demo_requests`` for its tenant; the number of requests made
    (0 when the tenant already has requests)."""
    entries: Sequence[Mapping[str, Any]] = data.get("demo_requests") or []
    if not entries:
        return 0
    slug = data["tenant"]["slug"]
    tenant_id = session.scalar(select(Tenant.id).where(Tenant.slug == slug))
    session.commit()
    if tenant_id is None:
        raise DemoError(f"tenant {slug!r} does not exist: apply its manifest first")
    with bound_tenant(tenant_id):
        if session.scalar(select(func.count()).select_from(ApprovalRequest)):
            session.commit()
            return 0
        session.commit()
        for i, entry in enumerate(entries):
            try:
                _play(app, session, entry)
            except Exception as exc:
                session.rollback()
                raise DemoError(f"{slug} demo_requests[{i}] ({entry.get('title')}): {exc}") from exc
    return len(entries)


def _actor(app: Flask, username: str) -> Actor:
    user = current_appbuilder(app).sm.find_user(username=username)
    if user is None:
        raise DemoError(f"no user {username!r}")
    return Actor(user_id=int(user.id), method="web", mfa_verified_at=datetime.now(UTC))


def _play(app: Flask, session: Session, entry: Mapping[str, Any]) -> None:
    requester = _actor(app, entry["by"])
    result = do_submit(
        session,
        actor=requester,
        workflow_key=entry["workflow"],
        input_data=dict(entry.get("input") or {}),
        title=entry["title"],
    )
    rid = result.request_id
    for name in entry.get("attach") or []:
        do_attach(session, actor=requester, request_id=rid, filename=name, data=sample_file(name))
    for decision in entry.get("decisions") or []:
        actor = _actor(app, decision["by"])
        VERDICTS[decision["verdict"]](
            session,
            actor=actor,
            request_id=rid,
            step_index=decision.get("step"),
            comment=decision.get("comment"),
        )
    for comment in entry.get("comments") or []:
        author = _actor(app, comment["by"])
        done = do_comment(session, actor=author, request_id=rid, body=comment["body"])
        for name in comment.get("attach") or []:
            do_attach(
                session,
                actor=author,
                request_id=rid,
                filename=name,
                data=sample_file(name),
                comment_id=done.extra["comment_id"],
            )
    if entry.get("overdue"):
        _make_overdue(session, rid)


def _make_overdue(session: Session, request_id: uuid.UUID) -> None:
    """The active step was due a day ago (state and step projection alike)."""
    req = session.get(ApprovalRequest, request_id)
    if req is None:
        raise DemoError("the request vanished")
    state = state_from_dict(req.state)
    active = [s.index for s in state.steps if s.status == "active"]
    if not active:
        raise DemoError("overdue: the request has no active step")
    due = datetime.now(UTC) - timedelta(days=1)
    submitted = due - timedelta(days=3)
    raw = dict(req.state)
    steps = [dict(s) for s in raw["steps"]]
    for index in active:
        steps[index]["due_at"] = due.isoformat()
    raw["steps"] = steps
    session.execute(
        text(
            "UPDATE approval_request SET state = CAST(:state AS jsonb), submitted_at = :submitted "
            "WHERE id = :id"
        ),
        {"state": _json(raw), "submitted": submitted, "id": request_id},
    )
    session.execute(
        text(
            "UPDATE approval_step SET due_at = :due "
            "WHERE request_id = :id AND step_index = ANY(:steps)"
        ),
        {"due": due, "id": request_id, "steps": active},
    )
    session.commit()


def _json(value: Any) -> str:
    return json.dumps(value)


# --- sample files -------------------------------------------------------------------------


def sample_file(name: str) -> bytes:
    """A small file whose content matches its name's extension (receipts and quotes)."""
    lower = name.lower()
    if lower.endswith(".png"):
        return receipt_png()
    if lower.endswith(".pdf"):
        return quote_pdf(name.rsplit(".", 1)[0].replace("-", " ").title())
    if lower.endswith(".txt"):
        return f"{name}\nDemo file of the Signoff quick start.\n".encode()
    raise DemoError(f"attach: {name!r} must end in .png, .pdf or .txt")


def receipt_png(width: int = 120, height: int = 160) -> bytes:
    """A receipt-like greyscale PNG: a white slip with printed lines and a total."""
    rows = []
    for y in range(height):
        row = bytearray([0])  # filter: none
        for x in range(width):
            border = x < 2 or x >= width - 2 or y < 2 or y >= height - 2
            line = 14 <= y < 130 and y % 12 in (0, 1) and 10 <= x < (width - 10 - (y * 7) % 40)
            total = 138 <= y < 144 and width // 2 <= x < width - 10
            row.append(0x60 if border else 0x30 if (line or total) else 0xFF)
        rows.append(bytes(row))

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + chunk(b"IEND", b"")
    )


def quote_pdf(title: str) -> bytes:
    """A one-page PDF with a title line (valid enough for any viewer)."""
    safe = "".join(c for c in title if c.isalnum() or c in " .,:-")[:60]
    stream = f"BT /F1 18 Tf 72 720 Td ({safe}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return bytes(out)
