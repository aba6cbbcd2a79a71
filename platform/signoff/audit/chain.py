"""The per-tenant audit hash chain: append in the caller's transaction, verify in SQL.

The chain lives in PostgreSQL (``sql/functions/audit_*.sql``): ``signoff.audit_append``
is the only way in, and ``signoff.audit_verify`` walks a chain in one set-based
pass. This module is the thin typed layer over both. Every call runs in the
caller's transaction, whose bound tenant (docs/ARCHITECTURE.md §2) is the chain it touches.

Canonical bytes of an event (``signoff.audit_canonical``), joined by U+001F:
tenant uuid, seq, occurred_at as integer microseconds since the Unix epoch (UTC),
actor_id and on_behalf_of_id (``~`` for NULL), action, object_type and object_id
as ``quote_nullable()`` literals, and the payload's jsonb text. ``row_hash =
sha256(prev_hash || canonical)``; the first event's ``prev_hash`` is
``sha256('signoff-audit-genesis:' || tenant_id)``. No session setting (TimeZone,
DateStyle, locale, extra_float_digits) enters it.
"""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session, scoped_session

SessionLike = Session | scoped_session[Session]

#: Problem kinds ``signoff.audit_verify`` reports, in the order it ranks them
#: when one row has several.
PROBLEMS: dict[str, str] = {
    "gap": "sequence gap (events deleted before this one, or the chain does not start at 1)",
    "bad_first_link": "the first event does not link to the tenant's genesis hash",
    "fork": "prev_hash does not match the previous event (replaced, forged or reordered)",
    "edited": "row hash does not match the event's content (edited)",
}

_APPEND = text(
    "SELECT signoff.audit_append(:actor, :obo, :action, :otype, :oid, CAST(:payload AS jsonb))"
)
_VERIFY = text(
    "SELECT tenant_id, ok, rows_checked, head_seq, head_hash, broken_seq, problem "
    "FROM signoff.audit_verify(:tenant, :from_seq, :to_seq)"
)
_VERIFY_ALL = text(
    "SELECT tenant_id, ok, rows_checked, head_seq, head_hash, broken_seq, problem "
    "FROM signoff.audit_verify_all()"
)
_VERIFY_DECISIONS = text(
    "SELECT event_seq, decision_id, problem FROM signoff.decision_verify(:tenant)"
)
_HEAD = text(
    "SELECT seq, row_hash FROM audit_event WHERE tenant_id = :tenant ORDER BY seq DESC LIMIT 1"
)


class AuditError(Exception):
    """An audit operation was refused (broken chain, missing key, ...). A refusal for a
    broken chain or checkpoint names the seq and the problem kind (:data:`PROBLEMS`,
    ``checkpoints.CHECKPOINT_PROBLEMS``), so it can be stored without its message."""

    def __init__(self, message: str, *, seq: int | None = None, problem: str | None = None):
        super().__init__(message)
        self.seq = seq
        self.problem = problem


@dataclass(frozen=True)
class VerifyResult:
    """What ``signoff.audit_verify`` found for one tenant (or one seq range of it)."""

    tenant_id: uuid.UUID
    ok: bool
    rows_checked: int
    head_seq: int | None
    head_hash: bytes | None
    broken_seq: int | None = None
    problem: str | None = None

    @property
    def message(self) -> str:
        """One line for logs, the CLI and reports."""
        if self.ok:
            if not self.head_seq:
                return "chain ok: no events"
            head = self.head_hash.hex() if self.head_hash else "?"
            return f"chain ok: {self.rows_checked} events, head seq {self.head_seq} ({head})"
        detail = PROBLEMS.get(self.problem or "", self.problem or "unknown problem")
        return f"chain BROKEN at seq {self.broken_seq}: {self.problem}: {detail}"


def _json_default(value: Any) -> Any:
    """JSON for the types workflow payloads carry; Decimals stay exact as strings."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def to_json(value: Any) -> str:
    """JSON text for a jsonb parameter: datetimes as ISO 8601, Decimals as exact strings."""
    return json.dumps(value, default=_json_default, ensure_ascii=False)


def payload_json(payload: Mapping[str, Any]) -> str:
    """The JSON text sent to ``audit_append`` (jsonb normalizes key order itself)."""
    return to_json(dict(payload))


def append(
    session: SessionLike,
    *,
    actor_id: int | None,
    on_behalf_of_id: int | None,
    action: str,
    object_type: str,
    object_id: str | None,
    payload: Mapping[str, Any],
) -> int:
    """Append one event to the bound tenant's chain in the caller's transaction; its seq.

    The row commits or rolls back with the caller's work. Appends of one tenant
    are serialized by a transaction-level advisory lock held until commit, so
    call this late in the transaction. Raises if no tenant is bound.
    """
    seq = session.execute(
        _APPEND,
        {
            "actor": actor_id,
            "obo": on_behalf_of_id,
            "action": action,
            "otype": object_type,
            "oid": object_id,
            "payload": payload_json(payload),
        },
    ).scalar_one()
    return int(seq)


def _result(row: Any) -> VerifyResult:
    return VerifyResult(
        tenant_id=row.tenant_id,
        ok=bool(row.ok),
        rows_checked=int(row.rows_checked or 0),
        head_seq=row.head_seq,
        head_hash=bytes(row.head_hash) if row.head_hash is not None else None,
        broken_seq=row.broken_seq,
        problem=row.problem,
    )


def verify(
    session: SessionLike,
    tenant_id: uuid.UUID,
    *,
    from_seq: int = 1,
    to_seq: int | None = None,
) -> VerifyResult:
    """Verify ``tenant_id``'s chain (or the seq range ``from_seq..to_seq``) in SQL.

    The transaction must be bound to ``tenant_id``; the SQL function raises otherwise.
    """
    row = session.execute(
        _VERIFY, {"tenant": tenant_id, "from_seq": from_seq, "to_seq": to_seq}
    ).one()
    return _result(row)


def verify_all(session: SessionLike) -> list[VerifyResult]:
    """Verify every tenant's chain (``signoff.audit_verify_all``, SECURITY DEFINER)."""
    return [_result(row) for row in session.execute(_VERIFY_ALL)]


@dataclass(frozen=True)
class DecisionProblem:
    """A decision that no longer matches the content hash its audit event recorded."""

    event_seq: int
    decision_id: uuid.UUID
    problem: str  # 'edited' or 'deleted'

    @property
    def message(self) -> str:
        return (
            f"decision {self.decision_id} {self.problem} since its audit event "
            f"(seq {self.event_seq}) recorded its hash"
        )


def verify_decisions(session: SessionLike, tenant_id: uuid.UUID) -> list[DecisionProblem]:
    """Decisions of ``tenant_id`` edited or deleted since their audit event hashed them
    (``signoff.decision_verify``); empty when every one matches. Bound to ``tenant_id``."""
    return [
        DecisionProblem(int(row.event_seq), row.decision_id, str(row.problem))
        for row in session.execute(_VERIFY_DECISIONS, {"tenant": tenant_id})
    ]


def chain_head(session: SessionLike, tenant_id: uuid.UUID) -> tuple[int, bytes] | None:
    """The bound tenant's last event as ``(seq, row_hash)``, or ``None`` for an empty chain."""
    row = session.execute(_HEAD, {"tenant": tenant_id}).first()
    return (int(row.seq), bytes(row.row_hash)) if row else None


def verify_batches(
    session: SessionLike,
    tenant_id: uuid.UUID,
    *,
    batch_size: int = 100_000,
    from_seq: int = 1,
    head_seq: int | None = None,
) -> Iterator[VerifyResult]:
    """Verify the chain in seq ranges of ``batch_size``, yielding each range's result.

    Stops after the first broken range: what follows a break is not evidence of
    anything. Fold the results with :func:`combine`. For progress reporting on
    long chains; the ranges overlap by one row, so no link goes unchecked.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    if head_seq is None:
        head = chain_head(session, tenant_id)
        head_seq = head[0] if head else 0
    start = from_seq
    while start <= head_seq:
        end = min(start + batch_size - 1, head_seq)
        result = verify(session, tenant_id, from_seq=start, to_seq=end)
        yield result
        if not result.ok:
            return
        start = end + 1


def combine(tenant_id: uuid.UUID, results: Iterable[VerifyResult]) -> VerifyResult:
    """Fold consecutive range results into one, as if the whole span were verified at once."""
    total = VerifyResult(
        tenant_id=tenant_id, ok=True, rows_checked=0, head_seq=None, head_hash=None
    )
    for part in results:
        total = replace(
            total,
            ok=part.ok,
            rows_checked=total.rows_checked + part.rows_checked,
            head_seq=part.head_seq if part.head_seq is not None else total.head_seq,
            head_hash=part.head_hash if part.head_hash is not None else total.head_hash,
            broken_seq=part.broken_seq,
            problem=part.problem,
        )
        if not part.ok:
            break
    return total
