"""Immutable request/step state, decisions, events and refusals, and their JSON form.

The action layer stores :func:`state_to_dict` in PostgreSQL and feeds
:func:`state_from_dict` back to the engine; everything here is a frozen value.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final, TypeVar

from signoff.errors import N_

__all__ = [
    "ACTIVE_REQUEST_STATUSES",
    "REFUSAL_CODES",
    "REQUEST_STATUSES",
    "STEP_STATUSES",
    "TERMINAL_REQUEST_STATUSES",
    "VERDICTS",
    "Decision",
    "Event",
    "FrozenDict",
    "Refusal",
    "RequestState",
    "StepState",
    "Transition",
    "state_from_dict",
    "state_to_dict",
]

REQUEST_STATUSES: Final = (
    "draft",
    "pending",
    "approved",
    "rejected",
    "changes_requested",
    "withdrawn",
    "expired",
)
TERMINAL_REQUEST_STATUSES: Final = frozenset({"approved", "rejected", "withdrawn", "expired"})
#: Statuses from which the requester may still withdraw, and a timer may expire.
ACTIVE_REQUEST_STATUSES: Final = frozenset({"pending", "changes_requested"})
#: ``cancelled``: the step was active when the request ended some other way (withdrawn, or a
#: sibling in its parallel group rejected); ``waiting`` steps that never started stay waiting.
STEP_STATUSES: Final = (
    "waiting",
    "active",
    "approved",
    "rejected",
    "skipped",
    "expired",
    "cancelled",
)
VERDICTS: Final = ("approve", "reject", "request_changes")

#: Every code :class:`Refusal` may carry, with the default message.
REFUSAL_CODES: Final = {
    "not_pending": N_("the request is not pending"),
    "step_not_active": N_("this step is not active"),
    "self_approval": N_("the requester cannot decide on their own request"),
    "delegation_not_allowed": N_("this step does not allow deciding on someone else's behalf"),
    "not_eligible": N_("you are not an approver of this step"),
    "already_decided": N_("this approver has already decided on this step"),
    "out_of_turn": N_("it is not this approver's turn"),
    "mfa_required": N_("this step requires a recent multi-factor authentication"),
    "invalid_verdict": N_("the verdict must be approve, reject or request_changes"),
    "no_eligible_approver": N_("a step has no one who may approve it"),
    "not_enough_approvers": N_("a step has too few approvers to ever complete"),
    "not_requester": N_("only the requester may do this"),
    "not_changes_requested": N_("changes were not requested on this request"),
}

K = TypeVar("K")
V = TypeVar("V")


class FrozenDict(Mapping[K, V]):
    """A hashable, read-only mapping that keeps insertion order (used for eligible sets)."""

    __slots__ = ("_data",)

    def __init__(self, items: Mapping[K, V] | Iterable[tuple[K, V]] = ()) -> None:
        self._data: dict[K, V] = dict(items)

    def __getitem__(self, key: K) -> V:
        return self._data[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self._data == dict(other.items())
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenDict({self._data!r})"


class Refusal(Exception):
    """The engine declines an action; ``code`` is one of :data:`REFUSAL_CODES`."""

    def __init__(self, code: str, message: str = "", step: int | None = None) -> None:
        if code not in REFUSAL_CODES:
            raise ValueError(f"unknown refusal code {code!r}")
        self.code = code
        self.message = message or REFUSAL_CODES[code]
        self.step = step
        super().__init__(f"{code}: {self.message}" + ("" if step is None else f" (step {step})"))


@dataclass(frozen=True)
class Decision:
    """One accepted verdict. ``on_behalf_of_id`` is the principal when a delegate acts."""

    actor_id: int
    on_behalf_of_id: int | None
    verdict: str
    at: datetime
    weight: int = 1

    @property
    def principal(self) -> int:
        """The approver this decision counts for."""
        return self.on_behalf_of_id if self.on_behalf_of_id is not None else self.actor_id


@dataclass(frozen=True)
class StepState:
    """One step of one request.

    ``eligible`` maps user id to weight (requester excluded). ``slots`` matter for the
    sequential and parallel patterns only: each slot is the group of users who may fill one
    approver entry; sequential slots are filled in order (for an ordered list of users this
    is the approval order), parallel slots in any order by distinct people. ``need`` is the
    target fixed at submission: approvals (count patterns), total weight (weighted) or slots.
    """

    index: int
    name: str
    pattern: str
    status: str = "waiting"
    eligible: FrozenDict[int, int] = field(default_factory=FrozenDict)
    slots: tuple[tuple[int, ...], ...] = ()
    decisions: tuple[Decision, ...] = ()
    need: int = 1
    requires_mfa: bool = False
    mfa_timeout: int | None = None
    parallel_group: str | None = None
    quorum: int | str | None = None
    threshold: int | None = None
    allow_delegation: bool = True
    sla_hours: int | None = None
    escalated: bool = False
    skip_reason: str | None = None
    activated_at: datetime | None = None
    due_at: datetime | None = None
    completed_at: datetime | None = None

    @property
    def decided(self) -> frozenset[int]:
        """Principals who have decided on this step."""
        return frozenset(d.principal for d in self.decisions)

    @property
    def is_done(self) -> bool:
        """Approved or skipped: the step no longer holds the request back."""
        return self.status in ("approved", "skipped")


@dataclass(frozen=True)
class RequestState:
    """A request's workflow state; ``version`` grows by one with every transition."""

    status: str
    requester_id: int
    steps: tuple[StepState, ...]
    version: int = 1
    #: Users the request's subject names besides its requester (owner, author...):
    #: never eligible, never deciding (the self-approval rule).
    related_ids: frozenset[int] = frozenset()

    @property
    def active_steps(self) -> tuple[int, ...]:
        """Indexes of the steps that accept decisions now."""
        return tuple(s.index for s in self.steps if s.status == "active")

    @property
    def is_terminal(self) -> bool:
        """Approved, rejected, withdrawn or expired: nothing can change it any more."""
        return self.status in TERMINAL_REQUEST_STATUSES

    def with_step(self, step: StepState) -> RequestState:
        """A copy with ``step`` replacing the step of the same index."""
        steps = list(self.steps)
        steps[step.index] = step
        return replace(self, steps=tuple(steps))


@dataclass(frozen=True)
class Event:
    """Something that happened, for audit rows and notifications.

    Kinds: request_submitted, request_resubmitted, step_activated, step_skipped,
    decision_recorded, turn_passed (sequential: the next approver's turn), step_completed,
    step_rejected, step_cancelled, step_expired, escalated, request_approved,
    request_rejected, changes_requested, request_withdrawn, request_expired.
    ``data`` values are JSON scalars or tuples of them.
    """

    kind: str
    step: int | None = None
    data: FrozenDict[str, Any] = field(default_factory=FrozenDict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (tuples become lists)."""
        data = {k: list(v) if isinstance(v, tuple) else v for k, v in self.data.items()}
        return {"kind": self.kind, "step": self.step, "data": data}


def event(kind: str, step: int | None = None, **data: Any) -> Event:
    """Shorthand for building an :class:`Event`."""
    return Event(kind, step, FrozenDict(data))


@dataclass(frozen=True)
class Transition:
    """The new state and what happened on the way there."""

    state: RequestState
    events: tuple[Event, ...]

    def kinds(self) -> list[str]:
        """Event kinds in order (handy in tests and logs)."""
        return [e.kind for e in self.events]


# --------------------------------------------------------------------------- serialisation

FORMAT: Final = 1


def _dt(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_dt(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"bad timestamp {value!r}")
    return datetime.fromisoformat(value)


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what} must be an integer, got {value!r}")
    return value


def _step_to_dict(step: StepState) -> dict[str, Any]:
    return {
        "index": step.index,
        "name": step.name,
        "pattern": step.pattern,
        "status": step.status,
        "eligible": [[uid, weight] for uid, weight in step.eligible.items()],
        "slots": [list(slot) for slot in step.slots],
        "decisions": [
            {
                "actor_id": d.actor_id,
                "on_behalf_of_id": d.on_behalf_of_id,
                "verdict": d.verdict,
                "at": d.at.isoformat(),
                "weight": d.weight,
            }
            for d in step.decisions
        ],
        "need": step.need,
        "requires_mfa": step.requires_mfa,
        "mfa_timeout": step.mfa_timeout,
        "parallel_group": step.parallel_group,
        "quorum": step.quorum,
        "threshold": step.threshold,
        "allow_delegation": step.allow_delegation,
        "sla_hours": step.sla_hours,
        "escalated": step.escalated,
        "skip_reason": step.skip_reason,
        "activated_at": _dt(step.activated_at),
        "due_at": _dt(step.due_at),
        "completed_at": _dt(step.completed_at),
    }


def state_to_dict(state: RequestState) -> dict[str, Any]:
    """JSON-safe form of ``state``; :func:`state_from_dict` reverses it exactly."""
    out: dict[str, Any] = {
        "format": FORMAT,
        "status": state.status,
        "requester_id": state.requester_id,
        "version": state.version,
        "steps": [_step_to_dict(s) for s in state.steps],
    }
    if state.related_ids:
        out["related_ids"] = sorted(state.related_ids)
    return out


def _decision_from_dict(raw: Mapping[str, Any]) -> Decision:
    verdict = raw["verdict"]
    if verdict not in VERDICTS:
        raise ValueError(f"bad verdict {verdict!r}")
    behalf = raw.get("on_behalf_of_id")
    at = _parse_dt(raw["at"])
    assert at is not None
    return Decision(
        actor_id=_int(raw["actor_id"], "actor_id"),
        on_behalf_of_id=None if behalf is None else _int(behalf, "on_behalf_of_id"),
        verdict=verdict,
        at=at,
        weight=_int(raw.get("weight", 1), "weight"),
    )


def _step_from_dict(raw: Mapping[str, Any]) -> StepState:
    status = raw["status"]
    if status not in STEP_STATUSES:
        raise ValueError(f"bad step status {status!r}")
    quorum = raw.get("quorum")
    if quorum is not None and not isinstance(quorum, int | str):
        raise ValueError(f"bad quorum {quorum!r}")
    threshold = raw.get("threshold")
    mfa_timeout = raw.get("mfa_timeout")
    sla_hours = raw.get("sla_hours")
    return StepState(
        index=_int(raw["index"], "index"),
        name=str(raw["name"]),
        pattern=str(raw["pattern"]),
        status=status,
        eligible=FrozenDict(
            (_int(uid, "user id"), _int(weight, "weight")) for uid, weight in raw["eligible"]
        ),
        slots=tuple(tuple(_int(uid, "user id") for uid in slot) for slot in raw["slots"]),
        decisions=tuple(_decision_from_dict(d) for d in raw["decisions"]),
        need=_int(raw["need"], "need"),
        requires_mfa=bool(raw["requires_mfa"]),
        mfa_timeout=None if mfa_timeout is None else _int(mfa_timeout, "mfa_timeout"),
        parallel_group=raw.get("parallel_group"),
        quorum=quorum,
        threshold=None if threshold is None else _int(threshold, "threshold"),
        allow_delegation=bool(raw.get("allow_delegation", True)),
        sla_hours=None if sla_hours is None else _int(sla_hours, "sla_hours"),
        escalated=bool(raw.get("escalated", False)),
        skip_reason=raw.get("skip_reason"),
        activated_at=_parse_dt(raw.get("activated_at")),
        due_at=_parse_dt(raw.get("due_at")),
        completed_at=_parse_dt(raw.get("completed_at")),
    )


def state_from_dict(raw: Mapping[str, Any]) -> RequestState:
    """Rebuild a :class:`RequestState`; raise ValueError on anything malformed."""
    try:
        if raw.get("format") != FORMAT:
            raise ValueError(f"unsupported state format {raw.get('format')!r}")
        status = raw["status"]
        if status not in REQUEST_STATUSES:
            raise ValueError(f"bad request status {status!r}")
        steps = tuple(_step_from_dict(s) for s in raw["steps"])
        if [s.index for s in steps] != list(range(len(steps))):
            raise ValueError("step indexes must be 0..n-1 in order")
        return RequestState(
            status=status,
            requester_id=_int(raw["requester_id"], "requester_id"),
            steps=steps,
            version=_int(raw["version"], "version"),
            related_ids=frozenset(_int(u, "user id") for u in raw.get("related_ids", ())),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed workflow state: {exc!r}") from exc
