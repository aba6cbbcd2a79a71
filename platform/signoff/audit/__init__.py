"""Tamper-evident audit trail (docs/ARCHITECTURE.md §5): hash chain in SQL, signed
checkpoints, reports.

``append`` is what workflow actions call inside their transaction; ``verify`` /
``verify_all`` run the SQL verifier; checkpoints add the key the database never
sees. Reports live in :mod:`signoff.audit.report` (imported on demand: PDF needs fpdf2).
"""

from signoff.audit.chain import (
    AuditError,
    DecisionProblem,
    VerifyResult,
    append,
    chain_head,
    verify,
    verify_all,
    verify_batches,
    verify_decisions,
)
from signoff.audit.checkpoints import (
    AuditKeys,
    Checkpoint,
    CheckpointResult,
    FullVerification,
    audit_keys,
    full_verification,
    sign_checkpoint,
    verify_checkpoints,
)

__all__ = [
    "AuditError",
    "AuditKeys",
    "Checkpoint",
    "CheckpointResult",
    "DecisionProblem",
    "FullVerification",
    "VerifyResult",
    "append",
    "audit_keys",
    "chain_head",
    "full_verification",
    "sign_checkpoint",
    "verify",
    "verify_all",
    "verify_batches",
    "verify_checkpoints",
    "verify_decisions",
]
