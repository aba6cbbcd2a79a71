"""Signed checkpoints: what the keyless hash chain cannot prove by itself (docs/ARCHITECTURE.md §5).

Whoever owns the database can recompute a whole chain after editing it, or cut
off its tail, and ``audit_verify`` would still say ok. So the application signs
``(tenant, seq, head_hash)`` with HMAC-SHA256 under a key that never enters the
database or the logs, and stores the signature in ``audit_checkpoint``.
Verification then checks that every checkpoint's signature is good under the
key of its ``key_id``, that the chain still has that ``row_hash`` at that seq,
and that the chain still reaches the newest checkpoint.

Keys: ``SIGNOFF_AUDIT_KEY`` (the current key, its UTF-8 bytes) with id
``SIGNOFF_AUDIT_KEY_ID`` (default ``k1``); retired keys stay verifiable through
``SIGNOFF_AUDIT_OLD_KEYS`` = ``id:key,id:key``. Rotation: move the current key
into the old keys, set a new key and id; old checkpoints keep verifying.

What remains possible to a database owner: deleting checkpoint rows (keep the
lines ``signoff audit checkpoint`` prints in the job logs, outside the database,
to compare), and rewriting events newer than the newest checkpoint.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import text

from signoff.audit.chain import (
    AuditError,
    SessionLike,
    VerifyResult,
    chain_head,
    verify,
)

DEFAULT_KEY_ID = "k1"

#: Checkpoint problem kinds.
CHECKPOINT_PROBLEMS: dict[str, str] = {
    "unknown_key": "signed with a key id that is not configured: cannot be verified",
    "bad_signature": "signature does not match (checkpoint forged or replaced)",
    "truncated": "the chain no longer reaches this checkpoint (tail cut off)",
    "missing_row": "the chain has no event at this seq (deleted)",
    "rewritten": "the event at this seq has a different hash than was signed (chain rewritten)",
}

_INSERT = text(
    "INSERT INTO audit_checkpoint (tenant_id, seq, head_hash, key_id, signature) "
    "VALUES (:tenant, :seq, :head_hash, :key_id, :signature) "
    "ON CONFLICT (tenant_id, seq, key_id) DO NOTHING"
)
_SELECT_ONE = text(
    "SELECT tenant_id, seq, head_hash, signed_at, key_id, signature FROM audit_checkpoint "
    "WHERE tenant_id = :tenant AND seq = :seq AND key_id = :key_id"
)
_WITH_CHAIN = text(
    "SELECT c.tenant_id, c.seq, c.head_hash, c.signed_at, c.key_id, c.signature, "
    "       e.row_hash AS chain_hash "
    "FROM audit_checkpoint AS c "
    "LEFT JOIN audit_event AS e ON e.tenant_id = c.tenant_id AND e.seq = c.seq "
    "WHERE c.tenant_id = :tenant ORDER BY c.seq, c.key_id"
)


@dataclass(frozen=True)
class Checkpoint:
    tenant_id: uuid.UUID
    seq: int
    head_hash: bytes
    signed_at: datetime
    key_id: str
    signature: bytes
    #: The first seq :func:`sign_checkpoint` verified before signing (the one after the
    #: newest checkpoint that still holds: past the head when nothing was newer);
    #: ``None`` when it was told not to verify.
    verified_from: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class CheckpointProblem:
    seq: int
    key_id: str
    kind: str

    @property
    def message(self) -> str:
        return f"checkpoint {self.key_id}@{self.seq}: {self.kind}: {CHECKPOINT_PROBLEMS[self.kind]}"


@dataclass(frozen=True)
class CheckpointResult:
    tenant_id: uuid.UUID
    checked: int
    newest_seq: int | None
    head_seq: int | None
    problems: tuple[CheckpointProblem, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def message(self) -> str:
        if self.problems:
            more = f" (+{len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
            return f"checkpoints BROKEN: {self.problems[0].message}{more}"
        if not self.checked:
            return "checkpoints: none yet"
        return f"checkpoints ok: {self.checked} verified, newest at seq {self.newest_seq}"


@dataclass(frozen=True)
class FullVerification:
    """Chain and checkpoints together: the answer to "is this trail intact?"."""

    chain: VerifyResult
    checkpoints: CheckpointResult | None
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.chain.ok and (self.checkpoints is None or self.checkpoints.ok)

    @property
    def message(self) -> str:
        parts = [self.chain.message]
        if self.checkpoints is not None:
            parts.append(self.checkpoints.message)
        parts.extend(self.notes)
        return "; ".join(parts)


# --- keys ---------------------------------------------------------------------------


def _key_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


def parse_old_keys(spec: str | None) -> dict[str, bytes]:
    """``"id:key,id:key"`` -> ``{id: key bytes}``; a key may itself contain ``:``."""
    keys: dict[str, bytes] = {}
    for item in (spec or "").split(","):
        item = item.strip()
        if not item:
            continue
        key_id, sep, secret = item.partition(":")
        key_id = key_id.strip()
        if not sep or not key_id or not secret:
            # Never echo the item: it holds a key.
            raise ValueError("SIGNOFF_AUDIT_OLD_KEYS: every entry must be id:key")
        if key_id in keys:
            raise ValueError(f"SIGNOFF_AUDIT_OLD_KEYS: key id {key_id!r} given twice")
        keys[key_id] = _key_bytes(secret)
    return keys


@dataclass(frozen=True)
class AuditKeys:
    """The signing key and every key a checkpoint may be verified with. Never logged."""

    current_id: str | None
    current: bytes | None
    all: Mapping[str, bytes]

    def __repr__(self) -> str:
        return f"AuditKeys(current_id={self.current_id!r}, ids={sorted(self.all)})"


def audit_keys(config: Mapping[str, Any]) -> AuditKeys:
    """Keys from the app config: ``SIGNOFF_AUDIT_KEY``, ``_KEY_ID`` and ``_OLD_KEYS``."""
    raw = config.get("SIGNOFF_AUDIT_KEY")
    key_id = str(config.get("SIGNOFF_AUDIT_KEY_ID") or DEFAULT_KEY_ID)
    keys = parse_old_keys(config.get("SIGNOFF_AUDIT_OLD_KEYS"))
    current = _key_bytes(raw) if raw else None
    if current is not None:
        if key_id in keys and not hmac.compare_digest(keys[key_id], current):
            raise ValueError(
                f"SIGNOFF_AUDIT_OLD_KEYS has a different key under the current id {key_id!r}"
            )
        keys[key_id] = current
    return AuditKeys(current_id=key_id if current else None, current=current, all=keys)


# --- signing ------------------------------------------------------------------------


def checkpoint_message(tenant_id: uuid.UUID, seq: int, head_hash: bytes) -> bytes:
    """The signed text: ``f"{tenant_id}|{seq}|{head_hash.hex()}"``."""
    return f"{tenant_id}|{seq}|{head_hash.hex()}".encode("ascii")


def compute_signature(key: bytes, tenant_id: uuid.UUID, seq: int, head_hash: bytes) -> bytes:
    return hmac.new(key, checkpoint_message(tenant_id, seq, head_hash), hashlib.sha256).digest()


def _checkpoint(row: Any) -> Checkpoint:
    return Checkpoint(
        tenant_id=row.tenant_id,
        seq=int(row.seq),
        head_hash=bytes(row.head_hash),
        signed_at=row.signed_at,
        key_id=row.key_id,
        signature=bytes(row.signature),
    )


def _verified_from(session: SessionLike, tenant_id: uuid.UUID, key: bytes, key_id: str) -> int:
    """The seq after the newest checkpoint of ``key_id`` that still holds, else 1.

    Signing re-verifies the chain only from there. A newest checkpoint that no
    longer holds means tampering: refuse to sign over it.
    """
    rows = session.execute(
        text(
            "SELECT c.seq, c.head_hash, c.signature, e.row_hash AS chain_hash "
            "FROM audit_checkpoint AS c LEFT JOIN audit_event AS e "
            "  ON e.tenant_id = c.tenant_id AND e.seq = c.seq "
            "WHERE c.tenant_id = :tenant AND c.key_id = :key_id ORDER BY c.seq DESC LIMIT 1"
        ),
        {"tenant": tenant_id, "key_id": key_id},
    ).first()
    if rows is None:
        return 1
    signature = compute_signature(key, tenant_id, int(rows.seq), bytes(rows.head_hash))
    if not hmac.compare_digest(signature, bytes(rows.signature)):
        raise AuditError(
            f"checkpoint {key_id}@{rows.seq}: bad signature; not signing",
            seq=int(rows.seq),
            problem="bad_signature",
        )
    if rows.chain_hash is None or bytes(rows.chain_hash) != bytes(rows.head_hash):
        raise AuditError(
            f"checkpoint {key_id}@{rows.seq} no longer matches the chain; not signing",
            seq=int(rows.seq),
            problem="missing_row" if rows.chain_hash is None else "rewritten",
        )
    return int(rows.seq) + 1


def sign_checkpoint(
    session: SessionLike,
    tenant_id: uuid.UUID,
    key: bytes,
    key_id: str,
    *,
    verify_first: bool = True,
) -> Checkpoint | None:
    """Sign the bound tenant's current head and store the checkpoint; ``None`` if no events.

    With ``verify_first`` (the default) the chain since the newest valid
    checkpoint of ``key_id`` is verified first, and a broken chain raises
    :class:`AuditError` instead of being signed: a signature must never launder
    tampering. Signing the same head twice returns the existing checkpoint.
    """
    if not key:
        raise AuditError("no audit key: set SIGNOFF_AUDIT_KEY")
    head = chain_head(session, tenant_id)
    if head is None:
        return None
    seq, head_hash = head
    verified_from: int | None = None
    if verify_first:
        start = verified_from = _verified_from(session, tenant_id, key, key_id)
        if start <= seq:
            result = verify(session, tenant_id, from_seq=start, to_seq=seq)
            if not result.ok:
                raise AuditError(
                    f"not signing: {result.message}", seq=result.broken_seq, problem=result.problem
                )
    session.execute(
        _INSERT,
        {
            "tenant": tenant_id,
            "seq": seq,
            "head_hash": head_hash,
            "key_id": key_id,
            "signature": compute_signature(key, tenant_id, seq, head_hash),
        },
    )
    row = session.execute(_SELECT_ONE, {"tenant": tenant_id, "seq": seq, "key_id": key_id}).one()
    return replace(_checkpoint(row), verified_from=verified_from)


# --- verification -------------------------------------------------------------------


def verify_checkpoints(
    session: SessionLike, tenant_id: uuid.UUID, keys: Mapping[str, bytes]
) -> CheckpointResult:
    """Check every checkpoint of the bound tenant against ``keys`` and the chain.

    Per checkpoint: its key id is known, its signature is good, the chain has an
    event at its seq with the signed hash. A checkpoint beyond the chain's head
    means the tail was cut off.
    """
    head = chain_head(session, tenant_id)
    head_seq = head[0] if head else None
    problems: list[CheckpointProblem] = []
    checked = 0
    newest: int | None = None
    for row in session.execute(_WITH_CHAIN, {"tenant": tenant_id}):
        checked += 1
        seq = int(row.seq)
        newest = seq if newest is None else max(newest, seq)
        key = keys.get(row.key_id)
        if key is None:
            kind: str | None = "unknown_key"
        elif not hmac.compare_digest(
            compute_signature(key, tenant_id, seq, bytes(row.head_hash)), bytes(row.signature)
        ):
            kind = "bad_signature"
        elif row.chain_hash is None:
            kind = "truncated" if head_seq is None or seq > head_seq else "missing_row"
        elif bytes(row.chain_hash) != bytes(row.head_hash):
            kind = "rewritten"
        else:
            kind = None
        if kind:
            problems.append(CheckpointProblem(seq=seq, key_id=row.key_id, kind=kind))
    return CheckpointResult(
        tenant_id=tenant_id,
        checked=checked,
        newest_seq=newest,
        head_seq=head_seq,
        problems=tuple(problems),
    )


def full_verification(
    session: SessionLike,
    tenant_id: uuid.UUID,
    keys: Mapping[str, bytes] | None,
    *,
    chain: VerifyResult | None = None,
) -> FullVerification:
    """Chain (``audit_verify``) and checkpoints (when ``keys`` is given) in one result.

    Pass ``chain`` when the chain was already verified (e.g. in batches).
    """
    chain = chain if chain is not None else verify(session, tenant_id)
    if keys is None:
        return FullVerification(
            chain=chain, checkpoints=None, notes=("checkpoints not checked: no audit key",)
        )
    return FullVerification(chain=chain, checkpoints=verify_checkpoints(session, tenant_id, keys))
