"""A tenant's last chain verification, stored (``audit_verification``, migration 0043).

The operator console shows it instead of walking every tenant's chain on each view:
the Audit page's button verifies one tenant's whole chain and its signed checkpoints
(:func:`record_full`), and the checkpoint job records what it verified before signing,
the chain since the newest checkpoint that still holds, or the break that stopped it
(:func:`record`). One row per tenant, replaced by the next result, except that a
broken result stays until a verification from seq 1 finds the chain intact: the job's
check of the newest events would otherwise hide a break an operator found further back.

Both run in the caller's transaction, bound to the tenant (row-level security).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import text

from signoff.audit.chain import SessionLike
from signoff.audit.checkpoints import FullVerification

Source = Literal["operator", "job"]

_RECORD = text(
    "INSERT INTO audit_verification AS v (tenant_id, verified_at, ok, from_seq, to_seq, "
    "  rows_checked, broken_seq, problem, checkpoints_checked, source) "
    "VALUES (signoff.current_tenant_id(), now(), :ok, :from_seq, :to_seq, :rows, :broken, "
    "  :problem, :checkpoints, :source) "
    "ON CONFLICT (tenant_id) DO UPDATE SET verified_at = excluded.verified_at, "
    "  ok = excluded.ok, from_seq = excluded.from_seq, to_seq = excluded.to_seq, "
    "  rows_checked = excluded.rows_checked, broken_seq = excluded.broken_seq, "
    "  problem = excluded.problem, checkpoints_checked = excluded.checkpoints_checked, "
    "  source = excluded.source "
    "WHERE v.ok OR NOT excluded.ok OR excluded.from_seq = 1 "
    "RETURNING ok"
)


@dataclass(frozen=True)
class StoredVerification:
    """What the console shows of a tenant's last verification: no event data."""

    verified_at: datetime
    ok: bool
    from_seq: int
    to_seq: int | None
    broken_seq: int | None
    problem: str | None
    source: str


def record(
    session: SessionLike,
    *,
    ok: bool,
    source: Source,
    from_seq: int = 1,
    to_seq: int | None = None,
    rows_checked: int = 0,
    broken_seq: int | None = None,
    problem: str | None = None,
    checkpoints_checked: int | None = None,
) -> bool:
    """Store the bound tenant's verification result; whether it replaced the stored one
    (``False``: a broken result stays, and this was an intact check of part of the chain)."""
    if not ok and not problem:
        problem = "unknown"
    kept = session.execute(
        _RECORD,
        {
            "ok": ok,
            "from_seq": from_seq,
            "to_seq": to_seq,
            "rows": rows_checked,
            "broken": broken_seq,
            "problem": problem,
            "checkpoints": checkpoints_checked,
            "source": source,
        },
    ).first()
    return kept is not None


def first_problem(found: FullVerification) -> tuple[int | None, str | None]:
    """The seq and kind of the first problem found: the chain's, else a checkpoint's."""
    chain, marks = found.chain, found.checkpoints
    if chain.ok and marks is not None and marks.problems:
        return marks.problems[0].seq, marks.problems[0].kind
    return chain.broken_seq, chain.problem


def record_full(session: SessionLike, found: FullVerification, *, source: Source) -> bool:
    """Store a whole-chain verification (chain and, with keys, its checkpoints)."""
    chain, marks = found.chain, found.checkpoints
    broken, problem = first_problem(found)
    return record(
        session,
        ok=found.ok,
        source=source,
        from_seq=1,
        to_seq=chain.head_seq,
        rows_checked=chain.rows_checked,
        broken_seq=broken,
        problem=problem,
        checkpoints_checked=marks.checked if marks is not None else None,
    )
