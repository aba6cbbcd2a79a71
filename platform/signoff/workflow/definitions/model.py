"""The frozen definition model, its vocabulary, and small helpers shared by the parser,
the exporter and input validation."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_CEILING, Decimal
from typing import Any, Final

from signoff.workflow.rules import Condition, Rule

PATTERNS: Final = (
    "sequential",
    "parallel",
    "unanimous",
    "majority",
    "first_response",
    "quorum",
    "weighted",
)
APPROVER_KINDS: Final = ("role", "user", "manager", "rule")
FIELD_TYPES: Final = ("string", "text", "integer", "decimal", "boolean", "date", "choice")
#: A workflow's optional ``priority`` (informational: display, sorting, filtering).
PRIORITIES: Final = ("low", "normal", "high", "urgent")
#: A step's optional ``step_type``: the specification's ``ProcessStepTemplate.step_type``
#: (default there ``"approval"``). Informational only: the engine ignores it.
STEP_TYPES: Final = ("approval", "review", "notification")
#: The ``input_data`` field amount thresholds compare against.
AMOUNT_FIELD: Final = "amount"

MAX_STEPS: Final = 50
MAX_APPROVERS: Final = 50
MAX_FIELDS: Final = 100
MAX_FREEFORM_KEYS: Final = 64
#: Length limits applied when a field gives no ``max_length``.
DEFAULT_MAX_LENGTH: Final = {"string": 255, "text": 10_000}
MAX_MAX_LENGTH: Final = 100_000
#: Upper bound of every hour count (SLA, reminder, duration, expiry): one leap year.
MAX_HOURS: Final = 24 * 366
MAX_DESCRIPTION: Final = 2000
MAX_CATEGORY: Final = 64

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
#: A workflow key, exactly as the database's ``ck_workflow_key`` allows it.
KEY_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
PERCENT_RE = re.compile(r"(\d{1,3}(?:\.\d{1,2})?)%")
DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
INT_RE = re.compile(r"[+-]?\d{1,30}")
CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
CONTROL_OR_BREAK_RE = re.compile(r"[\x00-\x1f\x7f]")

WORKFLOW_KEYS: Final = (
    "name",
    "description",
    "category",
    "priority",
    "estimated_duration_hours",
    "expire_after_hours",
    "require_reason",
    "steps",
    "fields",
    "initial_state",
    "approval_required_states",
    "auto_approve_conditions",
    "rules",
    "auditors",
)
STEP_KEYS: Final = (
    "name",
    "description",
    "step_type",
    "pattern",
    "approvers",
    "required_role",
    "requires_mfa",
    "mfa_timeout",
    "auto_approve_threshold",
    "quorum",
    "threshold",
    "sla_hours",
    "escalate_to",
    "reminder_hours",
    "allow_delegation",
    "skip_if",
    "parallel_group",
)
FIELD_KEYS: Final = ("name", "type", "required", "min", "max", "max_length", "choices", "label")


@dataclass(frozen=True)
class ApproverSpec:
    """Who may approve: a ``role`` or ``user`` name, the requester's ``manager``, or the
    approvers of the named ``rule`` (the action layer evaluates that rule, workflow-scoped
    or global, and uses its approvers when it matches). ``weight`` counts only in the
    weighted pattern."""

    kind: str
    value: str | None = None
    weight: int = 1


@dataclass(frozen=True)
class FieldDef:
    """One input field; ``min``/``max`` are Decimals (numbers) or dates (date fields)."""

    name: str
    type: str
    required: bool = False
    min: Decimal | date | None = None
    max: Decimal | date | None = None
    max_length: int | None = None
    choices: tuple[str, ...] = ()
    label: str | None = None


@dataclass(frozen=True)
class AutoApprove:
    """Approve at once when amount <= ``amount_threshold`` or the requester has a role."""

    amount_threshold: Decimal | None = None
    user_roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class StepDef:
    """One step. ``required_role`` is kept only to export the specification's format; the
    engine uses ``approvers``. ``quorum`` is a count or a percentage string like ``"60%"``.
    ``description`` and ``step_type`` (one of :data:`STEP_TYPES`, None when not given) are
    informational metadata from the specification's ``ProcessStepTemplate``: the engine
    never reads them."""

    name: str
    pattern: str = "sequential"
    approvers: tuple[ApproverSpec, ...] = ()
    required_role: str | None = None
    requires_mfa: bool = False
    mfa_timeout: int | None = None
    auto_approve_threshold: Decimal | None = None
    quorum: int | str | None = None
    threshold: int | None = None
    sla_hours: int | None = None
    escalate_to: ApproverSpec | None = None
    reminder_hours: int | None = None
    allow_delegation: bool = True
    skip_if: Condition | None = None
    parallel_group: str | None = None
    description: str = ""
    step_type: str | None = None


@dataclass(frozen=True)
class WorkflowDefinition:
    """A validated workflow; ``initial_state``/``approval_required_states`` are the
    specification's state names, kept for display and export.

    ``category``, ``priority`` (one of :data:`PRIORITIES`) and ``estimated_duration_hours``
    are informational metadata from the specification's ``ProcessTemplate``.
    ``expire_after_hours``: a request still open that long after submission expires; it is
    at least every step's ``sla_hours``. Each is None when not given.
    ``require_reason``: rejecting or requesting changes needs a comment (default true).
    ``auditors``: roles whose members may read this workflow's requests on the
    all-requests page and export them (read-only); checked against the tenant's roles
    when the workflow is saved (:mod:`signoff.workflow.reality`)."""

    key: str
    name: str
    description: str = ""
    steps: tuple[StepDef, ...] = ()
    fields: tuple[FieldDef, ...] = ()
    initial_state: str = "pending"
    approval_required_states: tuple[str, ...] = ()
    auto_approve: AutoApprove | None = None
    rules: tuple[Rule, ...] = ()
    category: str | None = None
    priority: str | None = None
    estimated_duration_hours: int | None = None
    expire_after_hours: int | None = None
    # A reject or a request for changes must say why (a comment), unless false.
    require_reason: bool = True
    auditors: tuple[str, ...] = ()

    def field(self, name: str) -> FieldDef | None:
        """The field called ``name``, if any."""
        return next((f for f in self.fields if f.name == name), None)


def quorum_need(quorum: int | str, eligible: int) -> int:
    """Approvals a quorum step needs among ``eligible`` people: N, or ceil(pct x eligible)."""
    if isinstance(quorum, int):
        return quorum
    match = PERCENT_RE.fullmatch(quorum)
    if match is None:
        raise ValueError(f"bad quorum {quorum!r}")
    exact = Decimal(match.group(1)) * eligible / 100
    return int(exact.to_integral_value(rounding=ROUND_CEILING))


def as_date(raw: Any) -> date | None:
    """A :class:`date` from a date object or a ``YYYY-MM-DD`` string, else None."""
    if isinstance(raw, date):
        return raw if type(raw) is date else None
    if isinstance(raw, str) and DATE_RE.fullmatch(raw):
        try:
            return date.fromisoformat(raw)
        except ValueError:
            return None
    return None
