"""Compliance report: a tenant's audit events in a date range, with the verification result.

CSV for tools (``#`` metadata lines, then one header row and one row per event;
cells that a spreadsheet would run as a formula are prefixed with ``'``) and PDF
for people (fpdf2, pure Python; a DejaVu font when the system has one, so any
name prints, else Helvetica with non-Latin-1 characters replaced). Times are UTC.
The transaction must be bound to the tenant, as for every tenant read.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import text

from signoff.audit.chain import SessionLike
from signoff.audit.checkpoints import FullVerification, full_verification

ReportFormat = Literal["csv", "pdf"]

COLUMNS = (
    "seq",
    "occurred_at_utc",
    "action",
    "object_type",
    "object_id",
    "actor",
    "on_behalf_of",
    "mfa_verified",
    "comment",
    "row_hash",
)

_EVENTS = text(
    "SELECT e.seq, e.occurred_at, e.action, e.object_type, e.object_id, "
    "       e.actor_id, a.username AS actor, e.on_behalf_of_id, o.username AS on_behalf_of, "
    "       e.payload -> 'mfa_verified' AS mfa, e.payload ->> 'comment' AS comment, e.row_hash "
    "FROM audit_event AS e "
    "LEFT JOIN ab_user AS a ON a.id = e.actor_id "
    "LEFT JOIN ab_user AS o ON o.id = e.on_behalf_of_id "
    "WHERE e.tenant_id = :tenant AND e.occurred_at >= :start AND e.occurred_at < :end "
    "ORDER BY e.seq"
)
_TENANT = text("SELECT slug, name FROM tenant WHERE id = :tenant")

_FONT_DIRS = (
    "/usr/share/fonts/truetype/dejavu",
    "/usr/share/fonts/dejavu",
    "/usr/local/share/fonts",
    "/Library/Fonts",
)


@dataclass(frozen=True)
class ReportRow:
    seq: int
    occurred_at: datetime
    action: str
    object_type: str
    object_id: str | None
    actor: str
    on_behalf_of: str
    mfa_verified: bool | None
    comment: str
    row_hash: bytes


@dataclass(frozen=True)
class ReportData:
    tenant_id: uuid.UUID
    tenant_slug: str
    tenant_name: str
    start: datetime
    end: datetime
    generated_at: datetime
    verification: FullVerification
    rows: Sequence[ReportRow]


def _instant(value: date | datetime, *, end: bool) -> datetime:
    """A date is a whole UTC day (the end date inclusive); a datetime is taken as given."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    start_of_day = datetime.combine(value, time.min, tzinfo=UTC)
    return start_of_day + timedelta(days=1) if end else start_of_day


def _user(name: str | None, user_id: int | None) -> str:
    if user_id is None:
        return ""
    return name if name is not None else f"#{user_id} (deleted)"


def _mfa(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def utc_iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def collect(
    session: SessionLike,
    tenant_id: uuid.UUID,
    start_date: date | datetime,
    end_date: date | datetime,
    *,
    keys: Mapping[str, bytes] | None = None,
    generated_at: datetime | None = None,
) -> ReportData:
    """Everything a report shows, read in the caller's (bound) transaction."""
    tenant = session.execute(_TENANT, {"tenant": tenant_id}).first()
    if tenant is None:
        raise LookupError(f"no tenant {tenant_id}")
    start, end = _instant(start_date, end=False), _instant(end_date, end=True)
    if end <= start:
        raise ValueError("the report period ends before it starts")
    verification = full_verification(session, tenant_id, keys)
    rows = [
        ReportRow(
            seq=int(r.seq),
            occurred_at=r.occurred_at,
            action=r.action,
            object_type=r.object_type,
            object_id=r.object_id,
            actor=_user(r.actor, r.actor_id),
            on_behalf_of=_user(r.on_behalf_of, r.on_behalf_of_id),
            mfa_verified=_mfa(r.mfa),
            comment=r.comment or "",
            row_hash=bytes(r.row_hash),
        )
        for r in session.execute(_EVENTS, {"tenant": tenant_id, "start": start, "end": end})
    ]
    return ReportData(
        tenant_id=tenant_id,
        tenant_slug=tenant.slug,
        tenant_name=tenant.name,
        start=start,
        end=end,
        generated_at=generated_at or datetime.now(UTC),
        verification=verification,
        rows=rows,
    )


def generate_compliance_report(
    session: SessionLike,
    tenant_id: uuid.UUID,
    start_date: date | datetime,
    end_date: date | datetime,
    format: ReportFormat = "csv",
    *,
    keys: Mapping[str, bytes] | None = None,
) -> bytes:
    """The report as CSV (UTF-8) or PDF bytes; ``end_date`` is inclusive for a date."""
    if format not in ("csv", "pdf"):
        raise ValueError(f"unknown report format {format!r}: csv or pdf")
    data = collect(session, tenant_id, start_date, end_date, keys=keys)
    return render_csv(data) if format == "csv" else render_pdf(data)


# --- CSV ------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: str) -> str:
    """Neutralize spreadsheet formula injection (OWASP: prefix with a quote)."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _metadata(data: ReportData) -> list[tuple[str, str]]:
    v = data.verification
    return [
        ("report", "Signoff audit compliance report"),
        ("tenant", f"{data.tenant_name} ({data.tenant_slug})"),
        ("tenant_id", str(data.tenant_id)),
        ("period_utc", f"{utc_iso(data.start)} .. {utc_iso(data.end)} (end exclusive)"),
        ("generated_at_utc", utc_iso(data.generated_at)),
        ("events_in_period", str(len(data.rows))),
        ("verification", "OK" if v.ok else "FAILED"),
        ("verification_detail", v.message),
    ]


def render_csv(data: ReportData) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for key, value in _metadata(data):
        # Plain comment lines, not CSV cells: a reader skips them with comment="#".
        out.write(f"# {key}: {' '.join(value.split())}\r\n")
    writer.writerow(COLUMNS)
    for r in data.rows:
        writer.writerow(
            [
                r.seq,
                utc_iso(r.occurred_at),
                _cell(r.action),
                _cell(r.object_type),
                _cell(r.object_id or ""),
                _cell(r.actor),
                _cell(r.on_behalf_of),
                "" if r.mfa_verified is None else str(r.mfa_verified).lower(),
                _cell(r.comment),
                r.row_hash.hex(),
            ]
        )
    return out.getvalue().encode("utf-8")


# --- PDF ------------------------------------------------------------------------------


def _find_font() -> tuple[Path, Path] | None:
    for folder in _FONT_DIRS:
        regular, bold = Path(folder, "DejaVuSans.ttf"), Path(folder, "DejaVuSans-Bold.ttf")
        if regular.is_file() and bold.is_file():
            return regular, bold
    return None


def _short_verdict(v: FullVerification) -> str:
    """The verdict in a footer's width: status and the first break, if any."""
    if v.ok:
        head = v.chain.head_seq or 0
        signed = f", {v.checkpoints.checked} checkpoints" if v.checkpoints else ""
        return f"Verification: VERIFIED ({v.chain.rows_checked} events, head seq {head}{signed})"
    if not v.chain.ok:
        return f"Verification: FAILED: chain broken at seq {v.chain.broken_seq} ({v.chain.problem})"
    first = v.checkpoints.problems[0] if v.checkpoints and v.checkpoints.problems else None
    where = f"checkpoint {first.key_id}@{first.seq} ({first.kind})" if first else "checkpoints"
    return f"Verification: FAILED: {where}"


def render_pdf(data: ReportData) -> bytes:
    from fpdf import FPDF
    from fpdf.fonts import FontFace

    font = _find_font()
    family = "DejaVu" if font else "Helvetica"

    def t(value: str) -> str:
        # Core fonts are Latin-1 only; a TTF font prints everything.
        return value if font else value.encode("latin-1", "replace").decode("latin-1")

    v = data.verification
    status = "VERIFIED" if v.ok else "VERIFICATION FAILED"
    short = _short_verdict(v)
    period = f"{data.start:%Y-%m-%d %H:%M} to {data.end:%Y-%m-%d %H:%M} UTC (end exclusive)"

    class Report(FPDF):
        def header(self) -> None:
            self.set_font(family, "B", 9)
            self.cell(0, 5, t(f"{data.tenant_name} - audit compliance report"), new_x="LMARGIN")
            self.set_font(family, "", 8)
            self.cell(0, 5, t(period), align="R", new_x="LMARGIN", new_y="NEXT")
            self.ln(2)

        def footer(self) -> None:
            self.set_y(-12)
            self.set_font(family, "", 7)
            self.cell(self.epw - 25, 5, t(short), new_x="LMARGIN")
            self.cell(0, 5, f"Page {self.page_no()}/{{nb}}", align="R")

    pdf = Report(orientation="L", unit="mm", format="A4")
    pdf.set_title(t(f"Audit compliance report: {data.tenant_name}"))
    pdf.set_author("Signoff")
    pdf.set_creation_date(data.generated_at)
    if font:
        pdf.add_font("DejaVu", "", str(font[0]))
        pdf.add_font("DejaVu", "B", str(font[1]))
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()

    pdf.set_font(family, "B", 16)
    pdf.cell(
        0, 10, t(f"Audit compliance report: {data.tenant_name}"), new_x="LMARGIN", new_y="NEXT"
    )
    pdf.set_font(family, "", 10)
    for label, value in (
        ("Tenant", f"{data.tenant_name} ({data.tenant_slug}), id {data.tenant_id}"),
        ("Period", period),
        ("Generated", f"{data.generated_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"),
        ("Events in period", str(len(data.rows))),
    ):
        pdf.cell(40, 6, t(label))
        pdf.cell(0, 6, t(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    ok_rgb, bad_rgb = (220, 245, 225), (252, 222, 222)
    pdf.set_fill_color(*(ok_rgb if v.ok else bad_rgb))
    pdf.set_font(family, "B", 11)
    pdf.cell(
        0, 8, t(f"Tamper-evidence verification: {status}"), fill=True, new_x="LMARGIN", new_y="NEXT"
    )
    pdf.set_font(family, "", 9)
    pdf.multi_cell(0, 5, t(v.message), fill=True, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)

    pdf.set_fill_color(255, 255, 255)
    pdf.set_font(family, "", 7.5)
    headings = ("Seq", "Time (UTC)", "Action", "Object", "Actor", "On behalf of", "MFA", "Comment")
    with pdf.table(
        col_widths=(12, 30, 32, 62, 30, 30, 9, 72),
        headings_style=FontFace(emphasis="BOLD", fill_color=(235, 238, 245)),
        line_height=4.2,
        first_row_as_headings=True,
        text_align="LEFT",
        padding=1,
        repeat_headings=1,
    ) as table:
        table.row([t(h) for h in headings])
        for r in data.rows:
            obj = f"{r.object_type} {r.object_id}" if r.object_id else r.object_type
            mfa = "" if r.mfa_verified is None else ("yes" if r.mfa_verified else "no")
            table.row(
                [
                    str(r.seq),
                    r.occurred_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                    t(r.action),
                    t(obj),
                    t(r.actor),
                    t(r.on_behalf_of),
                    mfa,
                    t(r.comment),
                ]
            )
    if not data.rows:
        pdf.ln(2)
        pdf.cell(0, 6, "No audit events in this period.")
    return bytes(pdf.output())
